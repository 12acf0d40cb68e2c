package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The docs are kept in step with the CLI and with themselves, as
// docs/rules.md is with the catalog (TestRulesDocIsCurrent): every stsguard
// command line they show names a subcommand and flags that exist, and every
// relative link and #anchor leads somewhere.

// docsRoot is the repository root, seen from cmd/stsguard.
const docsRoot = "../.."

// docFiles are README.md and docs/*.md, relative to docsRoot.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	more, err := filepath.Glob(filepath.Join(docsRoot, "docs", "*.md"))
	require.NoError(t, err)
	for _, f := range more {
		rel, err := filepath.Rel(docsRoot, f)
		require.NoError(t, err)
		files = append(files, filepath.ToSlash(rel))
	}
	require.Greater(t, len(files), 1, "no docs/*.md found")
	return files
}

// mdLine is a line of a markdown file, numbered from 1.
type mdLine struct {
	n    int
	text string
}

// mdDoc is a markdown file split into its fenced code blocks and the rest
// (prose, tables, headings), each line with its number.
type mdDoc struct {
	path   string // relative to docsRoot, with slashes
	blocks []mdBlock
	prose  []mdLine
}

// mdBlock is a fenced code block: its info string's language and its lines.
type mdBlock struct {
	lang  string
	lines []mdLine
}

var fenceRE = regexp.MustCompile("^\\s*(```+|~~~+)\\s*(\\S*)")

func readDoc(t *testing.T, path string) mdDoc {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(docsRoot, filepath.FromSlash(path)))
	require.NoError(t, err)
	d := mdDoc{path: path}
	var fence string // the open fence, "" outside a block
	var block mdBlock
	for i, line := range strings.Split(string(src), "\n") {
		l := mdLine{n: i + 1, text: line}
		m := fenceRE.FindStringSubmatch(line)
		switch {
		case fence == "" && m != nil:
			fence, block = m[1], mdBlock{lang: m[2]}
		case fence != "" && m != nil && m[1][0] == fence[0] && len(m[1]) >= len(fence) &&
			strings.TrimSpace(line) == m[1]:
			d.blocks = append(d.blocks, block)
			fence = ""
		case fence != "":
			block.lines = append(block.lines, l)
		default:
			d.prose = append(d.prose, l)
		}
	}
	require.Empty(t, fence, "%s: a code block is not closed", path)
	return d
}

// inlineCodeRE is an inline code span of one or more backticks; it may
// run over a line break.
var inlineCodeRE = regexp.MustCompile("(`+)([^`]+?)(`+)")

// inlineCode returns the inline code spans of the prose with the line each
// starts on.
func (d mdDoc) inlineCode() []mdLine {
	var out []mdLine
	text, lineAt := d.proseText()
	for _, m := range inlineCodeRE.FindAllStringSubmatchIndex(text, -1) {
		if text[m[2]:m[3]] != text[m[6]:m[7]] {
			continue
		}
		code := strings.Join(strings.Fields(text[m[4]:m[5]]), " ")
		out = append(out, mdLine{n: lineAt(m[0]), text: code})
	}
	return out
}

// proseText is the prose joined with line breaks, and the line number of
// an offset in it.
func (d mdDoc) proseText() (string, func(int) int) {
	var b strings.Builder
	starts := make([]int, len(d.prose))
	for i, l := range d.prose {
		starts[i] = b.Len()
		b.WriteString(l.text)
		b.WriteByte('\n')
	}
	return b.String(), func(off int) int {
		i, found := slices.BinarySearch(starts, off)
		if !found {
			i--
		}
		return d.prose[i].n
	}
}

// shellLangs are the info strings of code blocks that hold shell commands.
var shellLangs = []string{"sh", "bash", "shell", "console", "zsh"}

// commandLines returns the shell lines of the code blocks, with backslash
// continuations joined: in a transcript (a block with lines starting "$ "),
// the lines typed after the prompt; in a shell block (```sh), every line;
// in any other block (a synopsis, output, a listing), the lines that start
// with stsguard or kubectl stsguard.
func (d mdDoc) commandLines() []mdLine {
	var out []mdLine
	for _, block := range d.blocks {
		transcript := slices.ContainsFunc(block.lines, func(l mdLine) bool { return strings.HasPrefix(l.text, "$ ") })
		shell := slices.Contains(shellLangs, block.lang)
		var cur *mdLine
		for _, l := range block.lines {
			text := l.text
			if cur == nil {
				switch {
				case transcript:
					var ok bool
					if text, ok = strings.CutPrefix(text, "$ "); !ok {
						continue
					}
				case !shell:
					if segs := shellSegments(text); len(segs) == 0 || !isStsguard(segs[0]) {
						continue
					}
				}
				out = append(out, mdLine{n: l.n})
				cur = &out[len(out)-1]
			}
			text, more := strings.CutSuffix(strings.TrimRight(text, " \t"), `\`)
			cur.text += text + " "
			if !more {
				cur = nil
			}
		}
	}
	return out
}

// shellSegments splits a shell line into simple commands (at |, ||, &&, ;
// and newlines), each a list of words: quotes are removed, a comment is cut
// off, redirections and their targets are dropped. Square brackets mark
// optional parts of a synopsis ([-o text|json]): they are dropped, and a |
// inside them separates alternatives, not commands.
func shellSegments(line string) [][]string {
	var (
		segs     [][]string
		words    []string
		word     strings.Builder
		inWord   bool
		quote    rune
		brackets int
	)
	endWord := func() {
		if inWord {
			words = append(words, word.String())
		}
		word.Reset()
		inWord = false
	}
	endSeg := func() {
		endWord()
		if len(words) > 0 {
			segs = append(segs, words)
		}
		words = nil
	}
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				word.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == '#' && !inWord:
			i = len(rs)
		case r == '[':
			brackets++
		case r == ']':
			brackets = max(0, brackets-1)
		case r == '|' && brackets > 0:
			endWord()
		case r == '&' && i > 0 && rs[i-1] == '>': // 2>&1
			word.WriteRune(r)
		case r == '|' || r == ';' || r == '&' || r == '\n':
			endSeg()
		case unicode.IsSpace(r):
			endWord()
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	endSeg()
	// Drop redirections: >, 2>, >>, < with their target, or >file.
	for i, seg := range segs {
		var kept []string
		for j := 0; j < len(seg); j++ {
			w := seg[j]
			if op := strings.TrimLeft(w, "0123456789"); strings.HasPrefix(op, ">") || strings.HasPrefix(op, "<") && !strings.HasSuffix(op, ">") {
				if strings.Trim(op, "<>&") == "" {
					j++ // the target is the next word
				}
				continue
			}
			kept = append(kept, w)
		}
		segs[i] = kept
	}
	return segs
}

var envAssignmentRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// stsguardArgs returns the arguments of a simple command that runs
// stsguard, and whether it runs as the kubectl plugin: `stsguard ...`,
// `bin/stsguard ...`, `kubectl-stsguard ...` or `kubectl stsguard ...`.
func stsguardArgs(words []string) (args []string, plugin, ok bool) {
	for len(words) > 0 && envAssignmentRE.MatchString(words[0]) {
		words = words[1:] // VAR=value before the command
	}
	switch {
	case len(words) >= 2 && words[0] == "kubectl" && words[1] == "stsguard":
		return words[2:], true, true
	case len(words) >= 1 && strings.HasSuffix(words[0], "/"): // a directory
	case len(words) >= 1 && filepath.Base(words[0]) == "kubectl-stsguard":
		return words[1:], true, true
	case len(words) >= 1 && filepath.Base(words[0]) == "stsguard":
		return words[1:], false, true
	}
	return nil, false, false
}

func isStsguard(words []string) bool {
	_, _, ok := stsguardArgs(words)
	return ok
}

// placeholder is an argument a doc writes for the reader to fill in or to
// say "and so on": ..., …, <TAB>, <name>.
func placeholder(w string) bool {
	return w == "..." || w == "…" || strings.HasPrefix(w, "<") && strings.HasSuffix(w, ">")
}

// docsRootCommand is stsguard's command tree as main builds it, under its
// own name or as the kubectl plugin, with the help flags and the help and
// completion commands cobra adds when it executes.
func docsRootCommand(plugin bool) *cobra.Command {
	root := newRootCommand()
	if plugin {
		root = newRootCommandAs("kubectl stsguard")
	}
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.InitDefaultHelpFlag()
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
}

// lookupFlag finds a flag of cmd, its own or inherited: by name for
// "--name", by shorthand for "-n".
func lookupFlag(cmd *cobra.Command, name string, short bool) *pflag.Flag {
	for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
		var f *pflag.Flag
		if short {
			f = fs.ShorthandLookup(name)
		} else {
			f = fs.Lookup(name)
		}
		if f != nil {
			return f
		}
	}
	return nil
}

// checkCommand checks the arguments of one stsguard command line against
// the command tree: the first word that is not a flag names a subcommand
// (and so on down the tree), and every flag exists on the command it is
// given to. It returns what is wrong.
func checkCommand(root *cobra.Command, args []string) []string {
	var problems []string
	cmd := root
	flagsDone := false
	for i := 0; i < len(args); i++ {
		w := args[i]
		switch {
		case w == "" || placeholder(w):
		case flagsDone || w == "-" || !strings.HasPrefix(w, "-"):
			if cmd.HasSubCommands() {
				sub := findSubcommand(cmd, w)
				if sub == nil {
					problems = append(problems, fmt.Sprintf("%q is not a subcommand of %q", w, cmd.CommandPath()))
					return problems
				}
				cmd = sub
			}
		case w == "--":
			flagsDone = true
		default:
			name, short := strings.TrimPrefix(w, "--"), !strings.HasPrefix(w, "--")
			name, _, hasValue := strings.Cut(name, "=")
			if short {
				name = strings.TrimPrefix(w, "-")
				// -n NS, -nNS, -n=NS: the shorthand is the first letter.
				hasValue = len(name) > 1
				name = name[:1]
			}
			f := lookupFlag(cmd, name, short)
			if f == nil {
				problems = append(problems, fmt.Sprintf("%q has no flag %s", cmd.CommandPath(), w))
				continue
			}
			if !hasValue && f.NoOptDefVal == "" {
				i++ // the flag's value
			}
		}
	}
	return problems
}

func findSubcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, sub := range cmd.Commands() {
		if sub.Name() == name || slices.Contains(sub.Aliases, name) {
			return sub
		}
	}
	return nil
}

// docCommands returns every stsguard command line a doc shows, in code
// blocks and inline code, with its line.
func docCommands(d mdDoc) []docCommand {
	var out []docCommand
	for _, src := range [][]mdLine{d.commandLines(), d.inlineCode()} {
		for _, l := range src {
			for _, seg := range shellSegments(l.text) {
				if args, plugin, ok := stsguardArgs(seg); ok {
					out = append(out, docCommand{line: l.n, text: strings.Join(seg, " "), args: args, plugin: plugin})
				}
			}
		}
	}
	return out
}

type docCommand struct {
	line   int
	text   string
	args   []string
	plugin bool
}

func TestDocsCommandsExist(t *testing.T) {
	roots := map[bool]*cobra.Command{false: docsRootCommand(false), true: docsRootCommand(true)}
	seen := 0
	for _, path := range docFiles(t) {
		for _, c := range docCommands(readDoc(t, path)) {
			seen++
			for _, p := range checkCommand(roots[c.plugin], c.args) {
				t.Errorf("%s:%d: %s: %s", path, c.line, c.text, p)
			}
		}
	}
	// The docs show dozens; a parser that finds none checks nothing.
	assert.Greater(t, seen, 30, "stsguard command lines found in the docs")
}

func TestDocsCommandParsing(t *testing.T) {
	root := docsRootCommand(false)
	for line, want := range map[string][]string{
		"stsguard audit -f PATH... [--cluster] [-n NS] [-o text|json|sarif|junit] [--fail-on deny|warn]": nil,
		"helm template r ./chart | stsguard audit -f - -o sarif > out.sarif  # a comment --nope":         nil,
		`stsguard expand statefulset/x --template "a b" --size=20Gi --dry-run -nprod`:                    nil,
		"stsguard serve --port 9443 --zap-log-level debug --help":                                        nil,
		"stsguard audit --made-up-flag": {`"stsguard audit" has no flag --made-up-flag`},
		"stsguard audit -x":             {`"stsguard audit" has no flag -x`},
		"stsguard frobnicate --cluster": {`"frobnicate" is not a subcommand of "stsguard"`},
		"stsguard rules --template t":   {`"stsguard rules" has no flag --template`},
		"stsguard audit --cluster --context prod && stsguard expand statefulset/x --cluster c --bogus": {`"stsguard expand" has no flag --bogus`},
	} {
		var got []string
		for _, seg := range shellSegments(line) {
			if args, _, ok := stsguardArgs(seg); ok {
				got = append(got, checkCommand(root, args)...)
			}
		}
		assert.Equal(t, want, got, line)
	}
	// audit leaves out kubectl's --cluster NAME; its own --cluster is a switch.
	assert.Empty(t, checkCommand(root, []string{"audit", "--cluster", "-f", "x"}))
	// The plugin hides serve but still runs it.
	assert.Empty(t, checkCommand(docsRootCommand(true), []string{"serve", "--manage-certs"}))
}

// githubAnchor is the id GitHub gives a heading: the text as rendered
// (inline code, links and emphasis reduced to their text), lower case,
// every character that is not a letter, digit, space, - or _ dropped,
// each space a -.
func githubAnchor(heading string) string {
	h := regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(heading, "$1")
	h = regexp.MustCompile(`<[^>]+>`).ReplaceAllString(h, "")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), unicode.Is(unicode.Mn, r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

var (
	headingRE  = regexp.MustCompile(`^ {0,3}(#{1,6})\s+(.*?)(\s+#+)?\s*$`)
	htmlIDRE   = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
	linkRE     = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refDefRE   = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	lineAnchor = regexp.MustCompile(`^L\d+(-L\d+)?$`)
)

// anchors returns the ids of a doc's headings, numbered as GitHub numbers
// repeated ones (x, x-1, x-2), and of its <a name|id> tags.
func (d mdDoc) anchors() map[string]bool {
	ids := map[string]bool{}
	count := map[string]int{}
	for _, l := range d.prose {
		if m := headingRE.FindStringSubmatch(l.text); m != nil {
			id := githubAnchor(m[2])
			if n := count[id]; n > 0 {
				ids[fmt.Sprintf("%s-%d", id, n)] = true
			} else {
				ids[id] = true
			}
			count[id]++
		}
		for _, m := range htmlIDRE.FindAllStringSubmatch(l.text, -1) {
			ids[m[1]] = true
		}
	}
	return ids
}

// links returns the link targets of a doc's prose (code blocks and inline
// code are not links), with their lines.
func (d mdDoc) links() []mdLine {
	text, lineAt := d.proseText()
	// Blank out inline code, keeping offsets: `[x](y)` in code is no link.
	text = inlineCodeRE.ReplaceAllStringFunc(text, func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '\n' {
				return r
			}
			return 'x'
		}, s)
	})
	var out []mdLine
	for _, re := range []*regexp.Regexp{linkRE, refDefRE} {
		for _, m := range re.FindAllStringSubmatchIndex(text, -1) {
			out = append(out, mdLine{n: lineAt(m[2]), text: text[m[2]:m[3]]})
		}
	}
	return out
}

// checkLink says what is wrong with a link target of the doc at from.
func checkLink(from, target string, anchorsOf func(string) (map[string]bool, error)) string {
	if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
		return ""
	}
	p, anchor, _ := strings.Cut(target, "#")
	file := from
	if p != "" {
		if strings.HasPrefix(p, "/") {
			file = strings.TrimPrefix(p, "/")
		} else {
			file = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(from), p)))
		}
		if strings.HasPrefix(file, "../") {
			return fmt.Sprintf("%s: leaves the repository", target)
		}
		if _, err := os.Stat(filepath.Join(docsRoot, filepath.FromSlash(file))); err != nil {
			return fmt.Sprintf("%s: %s does not exist", target, file)
		}
	}
	if anchor == "" {
		return ""
	}
	if !strings.HasSuffix(file, ".md") {
		if lineAnchor.MatchString(anchor) {
			return ""
		}
		return fmt.Sprintf("%s: #%s in %s, which is not markdown", target, anchor, file)
	}
	ids, err := anchorsOf(file)
	if err != nil {
		return fmt.Sprintf("%s: %v", target, err)
	}
	if !ids[anchor] {
		return fmt.Sprintf("%s: %s has no heading #%s", target, file, anchor)
	}
	return ""
}

func TestDocsLinksResolve(t *testing.T) {
	cache := map[string]map[string]bool{}
	anchorsOf := func(file string) (map[string]bool, error) {
		if ids, ok := cache[file]; ok {
			return ids, nil
		}
		if _, err := os.Stat(filepath.Join(docsRoot, filepath.FromSlash(file))); err != nil {
			return nil, err
		}
		cache[file] = readDoc(t, file).anchors()
		return cache[file], nil
	}
	seen := 0
	for _, path := range docFiles(t) {
		for _, l := range readDoc(t, path).links() {
			seen++
			if p := checkLink(path, l.text, anchorsOf); p != "" {
				t.Errorf("%s:%d: %s", path, l.n, p)
			}
		}
	}
	assert.Greater(t, seen, 20, "links found in the docs")
}

func TestDocsAnchorRules(t *testing.T) {
	for heading, want := range map[string]string{
		"`stsguard audit`: what stsguard would do, before it is switched on":   "stsguard-audit-what-stsguard-would-do-before-it-is-switched-on",
		"Growing storage: the volumeClaimTemplate rules and `stsguard expand`": "growing-storage-the-volumeclaimtemplate-rules-and-stsguard-expand",
		"failurePolicy, webhook by webhook":                                    "failurepolicy-webhook-by-webhook",
		"RBAC: what the ClusterRole grants, and why":                           "rbac-what-the-clusterrole-grants-and-why",
		"`stsguard audit` on 10,000 objects":                                   "stsguard-audit-on-10000-objects",
		"Uninstall: webhook configurations first":                              "uninstall-webhook-configurations-first",
		"What [the docs](x.md) say about **snake_case** and *it*":              "what-the-docs-say-about-snake_case-and-it",
		"Break-glass: taking stsguard out of the path":                         "break-glass-taking-stsguard-out-of-the-path",
	} {
		assert.Equal(t, want, githubAnchor(heading), heading)
	}
	d := mdDoc{prose: []mdLine{{1, "# A"}, {2, "## A"}, {3, "### A ##"}, {4, `<a id="here"></a>`}}}
	assert.Equal(t, map[string]bool{"a": true, "a-1": true, "a-2": true, "here": true}, d.anchors())
}

// TestDocsLayoutMatchesTree holds the layout of docs/development.md to the
// tree: every directory that holds Go code is listed (itself or a parent
// that says what its subdirectories are), and every directory listed
// exists.
func TestDocsLayoutMatchesTree(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(docsRoot, "docs", "development.md"))
	require.NoError(t, err)
	doc := string(raw)
	_, after, ok := strings.Cut(doc, "## Layout\n\n```\n")
	require.True(t, ok, "docs/development.md has a ## Layout code block")
	block, _, ok := strings.Cut(after, "```")
	require.True(t, ok)
	listed := map[string]bool{}
	for _, line := range strings.Split(block, "\n") {
		entry, _, _ := strings.Cut(line, " ")
		if strings.HasSuffix(entry, "/") {
			dir := strings.TrimSuffix(entry, "/")
			listed[dir] = true
			_, err := os.Stat(filepath.Join(docsRoot, filepath.FromSlash(dir)))
			assert.NoError(t, err, "the layout lists %s/, which does not exist", dir)
		}
	}
	reported := map[string]bool{}
	err = filepath.WalkDir(docsRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(docsRoot, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() && path != docsRoot && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || d.Name() == "testdata" || rel == "hack/envtest") {
			return filepath.SkipDir
		}
		if d.IsDir() || filepath.Ext(path) != ".go" {
			return nil
		}
		dir := filepath.ToSlash(filepath.Dir(rel))
		for p := dir; p != "."; p = filepath.ToSlash(filepath.Dir(p)) {
			if listed[p] {
				return nil
			}
		}
		if !reported[dir] {
			reported[dir] = true
			t.Errorf("%s holds Go code but docs/development.md's layout lists neither it nor a parent", dir)
		}
		return nil
	})
	require.NoError(t, err)
}
