// Package manifest reads Kubernetes manifests (files, directories, stdin) into
// typed objects, with the file and line each object starts on, for `stsguard
// audit`.
//
// YAML is decoded as kubectl decodes it (sigs.k8s.io/yaml, YAML 1.1) and
// JSON with sigs.k8s.io/json, strictly: an unknown or duplicate field is an
// error, as with kubectl apply's default --validate=strict. StatefulSets in
// apps/v1beta1 and apps/v1beta2 are read as apps/v1, keeping the defaults of
// their own version where they differ (see convertStatefulSet).
package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"

	"github.com/stsguard/stsguard/kinds"
	yamlv3 "go.yaml.in/yaml/v3"
	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is one object read from a manifest.
type Object struct {
	// Object is a typed object of a kind of kinds.All()
	// (*appsv1.StatefulSet, *corev1.Service, *corev1.Secret,
	// *corev1.PersistentVolumeClaim, *storagev1.StorageClass,
	// *corev1.Namespace); nil for any other kind.
	Object runtime.Object
	// GVK is the apiVersion and kind as written in the manifest.
	GVK schema.GroupVersionKind
	// Namespace and Name are the object's (Namespace "" for cluster-scoped
	// kinds, and for other kinds when the manifest sets none).
	Namespace, Name string
	// File is the path the object was read from ("-" for standard input).
	File string
	// Line is the 1-based line of the object's first line in File.
	Line int
}

// Error is a manifest that cannot be read, with where.
type Error struct {
	// File is the path ("-" for standard input).
	File string
	// Line is the 1-based line of the document (0 when unknown).
	Line int
	// Err is the cause.
	Err error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Read reads every manifest under paths, in the order kubectl apply -f
// (with --recursive) reads them: paths in the order given; a directory's
// files in the order filepath.Walk visits them (each directory's entries
// sorted by name, a subdirectory's files where its name sorts), keeping only
// names ending in .json, .yaml or .yml (case-sensitive, as kubectl's
// FileExtensions); "-" for stdin. A file named explicitly is read whatever
// its name. The objects of a file come in document order, the items of a
// List in item order. Objects without a namespace take namespace when their
// kind is namespaced. It returns one entry per object of every document
// that could be read and one per document, file or path that could not
// (Err, an *Error): one bad document never hides the others. An entry holds
// an object or an error, never both.
//
// Read defers the typed decoding of namespaced objects of the kinds
// stsguard reads (StatefulSets, Services, Secrets and
// PersistentVolumeClaims) to Entry.Decode: such an entry holds the object's
// compact JSON (what sigs.k8s.io/yaml makes of the document, about the size
// of the YAML) and its kind, namespace and name as written (Namespace
// defaulted), not the typed object. Every other object (cluster-scoped
// kinds, kinds stsguard does not read, the items of a List) is decoded at
// once, as Parse decodes it. Decoding each deferred entry gives, in order,
// the objects and errors that reading everything at once would.
func Read(paths []string, stdin io.Reader, namespace string) []Entry {
	return read(paths, stdin, namespace, true)
}

// read is Read (later true), or with later false decodes every object at
// once.
func read(paths []string, stdin io.Reader, namespace string, later bool) []Entry {
	var out []Entry
	fail := func(file string, err error) { out = append(out, Entry{Err: &Error{File: file, Err: err}}) }
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(stdin)
			if err != nil {
				fail("-", err)
				continue
			}
			out = append(out, parse("-", data, namespace, later)...)
			continue
		}
		files, err := manifestFiles(p)
		if err != nil {
			fail(p, err)
			continue
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				fail(f, err)
				continue
			}
			out = append(out, parse(f, data, namespace, later)...)
		}
	}
	return out
}

// split returns the objects and the errors of entries that hold no
// deferred object, each in order.
func split(entries []Entry) ([]Object, []error) {
	var objs []Object
	var errs []error
	for _, e := range entries {
		if e.Err != nil {
			errs = append(errs, e.Err)
			continue
		}
		objs = append(objs, e.Object)
	}
	return objs, errs
}

// Entry is one object or one error of a manifest, as Read returns them.
type Entry struct {
	// Object is the object read. For a deferred entry (Deferred) its
	// Object field is nil until Decode; GVK, Namespace, Name, File and
	// Line are set.
	Object
	// Err is a document, file or path that could not be read (an *Error,
	// or for the items of one List the errors.Join of theirs); Object is
	// then the zero Object.
	Err error

	// json is the object's JSON for Decode (nil when not deferred);
	// apiVersion and kind are as written, namespace is the default one.
	json                        []byte
	apiVersion, kind, namespace string
	decoded                     bool // Decode took json
}

// Deferred reports whether e holds an object whose typed decoding waits
// for Decode.
func (e *Entry) Deferred() bool { return e.json != nil }

// Decode decodes a deferred entry's object strictly, exactly as Parse
// decodes it, and drops the entry's JSON (Deferred then reports false, and
// e keeps only the kind, namespace, name, file and line): it returns the
// object with its typed Object set, or an *Error, the one Parse would
// return for the document. On an entry that is not deferred it returns
// e.Object and e.Err unchanged. A deferred entry is decoded once: a second
// Decode returns an *Error saying so, not an object without its typed
// Object.
func (e *Entry) Decode() (Object, error) {
	if e.decoded {
		return Object{}, &Error{File: e.File, Line: e.Line, Err: fmt.Errorf("%s %s/%s was decoded already: Entry.Decode gives a deferred object once", e.kind, e.Namespace, e.Name)}
	}
	if e.json == nil {
		return e.Object, e.Err
	}
	js := e.json
	e.json, e.decoded = nil, true
	return decodeObject(e.File, e.Line, js, typeMeta{APIVersion: e.apiVersion, Kind: e.kind}, e.namespace)
}

// extensions are the file name endings read from a directory, as kubectl's
// (k8s.io/cli-runtime/pkg/resource.FileExtensions): compared case-sensitively.
var extensions = []string{".json", ".yaml", ".yml"}

// manifestFiles returns path itself for a file, and for a directory the manifest
// files under it (see extensions) in the order kubectl apply -f --recursive
// visits them: filepath.Walk's, which lists each directory's entries sorted
// by name and descends into a subdirectory where its name sorts (so
// "a/x.yaml" comes before "a-b/x.yaml", unlike a sort of the full paths).
func manifestFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && slices.Contains(extensions, filepath.Ext(p)) {
			files = append(files, p)
		}
		return nil
	})
	return files, err
}

// Parse reads the objects of one manifest: a multi-document YAML stream
// (documents separated by "---" lines, as kubectl splits them), or a JSON
// stream of objects; a document of kind List (or any kind ending in "List"
// with items) yields its items. Objects and errors come in document order;
// each error is an *Error. Documents are decoded on every CPU
// (GOMAXPROCS) while the stream is still being split.
func Parse(file string, data []byte, namespace string) ([]Object, []error) {
	return split(parse(file, data, namespace, false))
}

// parse is Parse's work, returning entries; later defers the typed
// decoding as Read does.
func parse(file string, data []byte, namespace string, later bool) []Entry {
	var results []*[]Entry
	var g errgroup.Group
	g.SetLimit(goruntime.GOMAXPROCS(0))
	// Documents go to the group by batches: a goroutine for each would
	// grow a new stack for each (a tenth of the time, measured).
	type job struct {
		d document
		r *[]Entry
	}
	var batch []job
	flush := func() {
		b := batch
		batch = nil
		g.Go(func() error {
			for _, j := range b {
				*j.r = decodeDocument(file, j.d, namespace, later)
			}
			return nil // a document's error is its result, not the group's
		})
	}
	for d := range documents(data) {
		r := new([]Entry)
		results = append(results, r)
		if d.err != nil {
			*r = []Entry{{Err: &Error{File: file, Line: d.line, Err: d.err}}}
			continue
		}
		if batch = append(batch, job{d, r}); len(batch) == parseBatch {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	_ = g.Wait() // never an error: see above
	n := 0
	for _, r := range results {
		n += len(*r)
	}
	out := make([]Entry, 0, n)
	for _, r := range results {
		out = append(out, *r...)
	}
	return out
}

// readKind returns the entry of kinds.All() that a document of apiVersion
// gv and kind is read as: the kind's own version, and apps/v1beta1 and
// apps/v1beta2 for a StatefulSet (read as apps/v1, see convertStatefulSet).
// It returns false for a kind stsguard does not read.
func readKind(gv schema.GroupVersion, kind string) (kinds.Info, bool) {
	k, ok := kinds.Get(kinds.Kind(kind))
	if !ok || gv.Group != k.GroupVersionKind.Group {
		return kinds.Info{}, false
	}
	old := k.Kind == kinds.StatefulSet && (gv.Version == "v1beta1" || gv.Version == "v1beta2")
	return k, gv.Version == k.GroupVersionKind.Version || old
}

// parseBatch is how many documents one goroutine of Parse decodes.
const parseBatch = 16

// document is one YAML or JSON document and the line it starts on, or a
// piece of the stream that is no document (err).
type document struct {
	data  []byte
	line  int // the line of the first content (not blank, not a comment)
	first int // the line of data's first line
	json  bool
	err   error // the stream cannot be split here (line: where)
}

// documents cuts data into documents, in order. Data whose first non-space
// byte is "{" or "[" is a JSON stream (see splitJSON); anything else is YAML
// (see splitYAML).
func documents(data []byte) iter.Seq[document] {
	if t := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		return func(yield func(document) bool) {
			for _, d := range splitJSON(data) {
				if !yield(d) {
					return
				}
			}
		}
	}
	return func(yield func(document) bool) { splitYAML(data, yield) }
}

// splitYAML cuts a YAML stream into documents as kubectl does, with
// k8s.io/apimachinery/pkg/util/yaml.YAMLReader: a line starting with "---"
// and followed by nothing, spaces or a comment separates documents; one
// followed by anything else ("--- x", "---x") is YAMLReader's error
// "invalid Yaml document separator: x", at that line. kubectl stops there;
// splitYAML goes on after it, and still reads as a document the lines
// between the last good separator and the bad one, which YAMLReader drops,
// so that the error hides no object. Documents that hold only comments and
// blank lines are dropped, as kubectl drops them.
//
// YAMLReader returns each document's lines but not where they were:
// splitYAML walks data alongside, one line for each line of a document and
// one for each separator line YAMLReader skipped or, when it came before
// any other line of a document, kept as the document's first line; it
// yields the lines of data after those separators, with the number of the
// first and of the first with content.
func splitYAML(data []byte, yield func(document) bool) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	// rest is the part of data YAMLReader has not returned yet, line the
	// number of its first line; next consumes that line and returns it.
	rest, line := data, 1
	next := func() []byte {
		l := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		line++
		return l
	}
	for {
		chunk, err := r.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		for len(rest) > 0 && isSeparator(rest) {
			next()
		}
		first, start, from := line, 0, rest
		// content consumes one line, noting the first with content.
		content := func() {
			if t := bytes.TrimSpace(next()); start == 0 && len(t) > 0 && t[0] != '#' {
				start = line - 1
			}
		}
		if err != nil {
			// YAMLReader dropped the lines before the bad separator, and the
			// separator; it goes on after it. Those lines are still read as
			// a document, from data, so that the error hides no object.
			for len(rest) > 0 && !bytes.HasPrefix(rest, []byte(yamlSeparator)) {
				content()
			}
			chunk = from[:len(from)-len(rest)]
			bad := document{line: line, err: err}
			next()
			if start > 0 && !yield(document{data: chunk, line: start, first: first}) {
				return
			}
			if !yield(bad) {
				return
			}
			continue
		}
		// YAMLReader keeps a separator read before any line of a document
		// as the document's first line; it was skipped above.
		n := bytes.Count(chunk, []byte("\n"))
		if bytes.HasPrefix(chunk, []byte(yamlSeparator)) {
			n--
		}
		for range n {
			content()
		}
		// The same lines as they are in data: YAMLReader's copy lacks the
		// "\r" of "\r\n" and ends the last line with "\n" where data may
		// not, which would move a YAML error's line or change its text.
		chunk = from[:len(from)-len(rest)]
		if start == 0 {
			continue // only comments and blank lines
		}
		if !yield(document{data: chunk, line: start, first: first}) {
			return
		}
	}
}

// yamlSeparator starts a line that separates YAML documents.
const yamlSeparator = "---"

// isSeparator tells whether the first line of data separates two YAML
// documents, by YAMLReader's rule: "---" then nothing, spaces or a comment.
func isSeparator(data []byte) bool {
	l, _, _ := bytes.Cut(data, []byte("\n"))
	rest, ok := bytes.CutPrefix(l, []byte(yamlSeparator))
	if !ok {
		return false
	}
	rest = bytes.TrimSpace(rest)
	return len(rest) == 0 || rest[0] == '#'
}

// splitJSON cuts a stream of JSON values, noting the line each starts on.
// It stays with encoding/json's Decoder rather than util/yaml's JSON path,
// which does not tell where in the stream a value was.
func splitJSON(data []byte) []document {
	dec := json.NewDecoder(bytes.NewReader(data))
	var docs []document
	for {
		before := skipSpace(data, int(dec.InputOffset()))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if !errors.Is(err, io.EOF) {
				// Hand the rest to the decoder for a precise error.
				docs = append(docs, document{data: data[before:], line: lineAt(data, before), first: lineAt(data, before), json: true})
			}
			return docs
		}
		docs = append(docs, document{data: raw, line: lineAt(data, before), first: lineAt(data, before), json: true})
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && strings.ContainsRune(" \t\r\n", rune(data[i])) {
		i++
	}
	return i
}

func lineAt(data []byte, offset int) int { return bytes.Count(data[:offset], []byte("\n")) + 1 }

// typeMeta is what is read of a document before its kind is known.
type typeMeta struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Items      []json.RawMessage `json:"items"`
	Metadata   nameOnly          `json:"metadata"`
}

// nameOnly is the namespace and name of a document's metadata, read
// leniently: a metadata that is not an object of strings leaves them
// empty and is no error here (the strict decode reports it).
type nameOnly struct {
	Namespace, Name string
}

func (n *nameOnly) UnmarshalJSON(data []byte) error {
	var m struct {
		Namespace, Name string
	}
	if json.Unmarshal(data, &m) == nil {
		*n = m
	}
	return nil
}

// decodeDocument reads one document into entries: its objects (a List's
// items), then at most one error (for a List, the errors.Join of its
// items'). With later, a single object of a namespaced kind stsguard reads
// is left deferred (see Read).
func decodeDocument(file string, d document, namespace string, later bool) []Entry {
	fail := func(line int, format string, args ...any) []Entry {
		return []Entry{{Err: &Error{File: file, Line: line, Err: fmt.Errorf(format, args...)}}}
	}
	js := d.data
	if !d.json {
		var err error
		if js, err = yaml.YAMLToJSON(d.data); err != nil {
			line := d.line
			if n := yamlErrorLine(err); n > 0 {
				line = d.first + n - 1
			}
			return fail(line, "%v", err)
		}
	}
	var tm typeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return fail(d.line, "not a Kubernetes object: %v", err)
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return fail(d.line, "not a Kubernetes object: apiVersion and kind must be set")
	}
	if tm.Items != nil && strings.HasSuffix(tm.Kind, "List") {
		lines := itemLines(d)
		var out []Entry
		var errs []error
		for i, item := range tm.Items {
			line := d.line
			if i < len(lines) {
				line = lines[i]
			}
			var itm typeMeta
			if err := json.Unmarshal(item, &itm); err != nil {
				errs = append(errs, &Error{File: file, Line: line, Err: fmt.Errorf("not a Kubernetes object: %v", err)})
				continue
			}
			o, err := decodeObject(file, line, item, itm, namespace)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, Entry{Object: o})
		}
		if err := errors.Join(errs...); err != nil {
			out = append(out, Entry{Err: err})
		}
		return out
	}
	if later {
		if e, ok := deferred(file, d.line, js, tm, namespace); ok {
			return []Entry{e}
		}
	}
	o, err := decodeObject(file, d.line, js, tm, namespace)
	if err != nil {
		return []Entry{{Err: err}}
	}
	return []Entry{{Object: o}}
}

// deferred returns the deferred entry of a document of a namespaced kind
// stsguard reads, with its namespace (defaulted to namespace) and name as
// decodeObject would set them when the strict decode succeeds. It returns
// false for any other document, and for one whose apiVersion does not
// parse (decodeObject reports it).
func deferred(file string, line int, js []byte, tm typeMeta, namespace string) (Entry, bool) {
	gv, err := schema.ParseGroupVersion(tm.APIVersion)
	if err != nil {
		return Entry{}, false
	}
	k, known := readKind(gv, tm.Kind)
	if !known || !k.Namespaced {
		return Entry{}, false
	}
	ns := tm.Metadata.Namespace
	if ns == "" {
		ns = namespace
	}
	return Entry{
		Object: Object{GVK: gv.WithKind(tm.Kind), Namespace: ns, Name: tm.Metadata.Name, File: file, Line: line},
		json:   js, apiVersion: tm.APIVersion, kind: tm.Kind, namespace: namespace,
	}, true
}

// itemLines returns the line of each item of a List document (YAML only;
// nil when it cannot tell).
func itemLines(d document) []int {
	if d.json {
		return nil
	}
	var root yamlv3.Node
	if err := yamlv3.Unmarshal(d.data, &root); err != nil || len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "items" {
			var lines []int
			for _, it := range m.Content[i+1].Content {
				lines = append(lines, d.first+it.Line-1)
			}
			return lines
		}
	}
	return nil
}

// yamlErrorLine reads the "line N" of a YAML parser error (1-based, within
// the document); 0 when it has none.
func yamlErrorLine(err error) int {
	var n int
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		if _, e := fmt.Sscanf(msg[i:], "line %d", &n); e == nil && n > 0 {
			return n
		}
	}
	return 0
}

// decodeObject decodes one object's JSON into its typed form.
func decodeObject(file string, line int, js []byte, tm typeMeta, namespace string) (Object, error) {
	if tm.APIVersion == "" || tm.Kind == "" {
		return Object{}, &Error{File: file, Line: line, Err: errors.New("not a Kubernetes object: apiVersion and kind must be set")}
	}
	gv, err := schema.ParseGroupVersion(tm.APIVersion)
	if err != nil {
		return Object{}, &Error{File: file, Line: line, Err: fmt.Errorf("apiVersion %q: %w", tm.APIVersion, err)}
	}
	o := Object{GVK: gv.WithKind(tm.Kind), File: file, Line: line}
	k, known := readKind(gv, tm.Kind)
	if !known {
		var meta struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		_ = json.Unmarshal(js, &meta)
		o.Namespace, o.Name = meta.Metadata.Namespace, meta.Metadata.Name
		return o, nil
	}
	into, namespaced := k.New(), k.Namespaced
	strict, err := sigsjson.UnmarshalStrict(js, into)
	if err == nil && len(strict) > 0 {
		err = errors.Join(strict...)
	}
	if err != nil {
		return Object{}, &Error{File: file, Line: line, Err: fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)}
	}
	if sts, ok := into.(*appsv1.StatefulSet); ok {
		convertStatefulSet(sts, gv.Version)
	}
	if namespaced && into.GetNamespace() == "" {
		into.SetNamespace(namespace)
	}
	if s, ok := into.(*corev1.Secret); ok {
		normalizeSecret(s)
	}
	o.Object, o.Namespace, o.Name = into, into.GetNamespace(), into.GetName()
	return o, nil
}

// convertStatefulSet makes a StatefulSet decoded from apps/version an
// apps/v1 one. The fields are the same; the defaults are not: apps/v1beta1
// defaults spec.updateStrategy to OnDelete (v1beta2 and v1 to RollingUpdate)
// and spec.selector to the pod template's labels (SetDefaults_StatefulSet in
// kubernetes pkg/apis/apps/v1beta1/defaults.go), so those are made explicit
// before the object is judged as apps/v1.
func convertStatefulSet(sts *appsv1.StatefulSet, version string) {
	if version == "v1beta1" {
		if sts.Spec.UpdateStrategy.Type == "" {
			sts.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType
		}
		if sts.Spec.Selector == nil && len(sts.Spec.Template.Labels) > 0 {
			sts.Spec.Selector = &metav1.LabelSelector{MatchLabels: sts.Spec.Template.Labels}
		}
	}
	sts.APIVersion, sts.Kind = "apps/v1", "StatefulSet"
}

// normalizeSecret merges stringData into data, as the apiserver does on
// write (stringData wins), so that rules see one map.
func normalizeSecret(s *corev1.Secret) {
	if len(s.StringData) == 0 {
		return
	}
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
}
