package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// splitAll returns the documents splitYAML cuts data into.
func splitAll(data []byte) []document {
	var docs []document
	splitYAML(data, func(d document) bool {
		docs = append(docs, d)
		return true
	})
	return docs
}

// TestSplitYAMLLines pins the documents splitYAML cuts a stream into: the
// lines of each as they are in the stream, its first line, its first line
// with content, or a bad separator's error and line.
func TestSplitYAMLLines(t *testing.T) {
	type doc struct {
		Data        string
		First, Line int
		Err         string
	}
	for _, tc := range []struct {
		name string
		in   string
		want []doc
	}{
		{
			name: "a document right after two separators",
			in:   "---\n---\na: 1\nb: 2\n",
			want: []doc{{Data: "a: 1\nb: 2\n", First: 3, Line: 3}},
		},
		{
			name: "separators in a row between documents",
			in:   "a: 1\n---\n---\n---\nb: 2\n---\nc: 3\n",
			want: []doc{{Data: "a: 1\n", First: 1, Line: 1}, {Data: "b: 2\n", First: 5, Line: 5}, {Data: "c: 3\n", First: 7, Line: 7}},
		},
		{
			name: "a leading separator is not part of the document, nor the one that ends it",
			in:   "--- # c\n# d\na: 1\n---\nb: 2",
			want: []doc{{Data: "# d\na: 1\n", First: 2, Line: 3}, {Data: "b: 2", First: 5, Line: 5}},
		},
		{
			name: "comment-only documents are dropped",
			in:   "# a\n---\n\n# b\n---\n---\n# c\n---\nx: 1\r\n",
			want: []doc{{Data: "x: 1\r\n", First: 9, Line: 9}},
		},
		{
			name: "a bad separator after a separator",
			in:   "---\n--- x\na: 1\n",
			want: []doc{{First: 2, Err: "invalid Yaml document separator: x"}, {Data: "a: 1\n", First: 3, Line: 3}},
		},
		{
			name: "the lines before a bad separator are a document",
			in:   "a: 1\n---\n# c\nb: 2\n---x\n---\n---\nc: 3",
			want: []doc{
				{Data: "a: 1\n", First: 1, Line: 1},
				{Data: "# c\nb: 2\n", First: 3, Line: 4},
				{First: 5, Err: "invalid Yaml document separator: x"},
				{Data: "c: 3", First: 8, Line: 8},
			},
		},
		{
			name: "a bad separator on the last line, without a newline",
			in:   "a: 1\n--- x",
			want: []doc{{Data: "a: 1\n", First: 1, Line: 1}, {First: 2, Err: "invalid Yaml document separator: x"}},
		},
		{
			name: "CRLF separators",
			in:   "---\r\n---\r\na: 1\r\n---\r\nb: 2\r\n",
			want: []doc{{Data: "a: 1\r\n", First: 3, Line: 3}, {Data: "b: 2\r\n", First: 5, Line: 5}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []doc
			for _, d := range splitAll([]byte(tc.in)) {
				g := doc{Data: string(d.data), First: d.first, Line: d.line}
				if d.err != nil {
					g = doc{First: d.line, Err: d.err.Error()}
				}
				got = append(got, g)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// FuzzSplitYAMLIsYAMLReader: the documents splitYAML yields are
// YAMLReader's, less a separator YAMLReader keeps as a document's first
// line and the documents of only comments and blank lines, each the bytes
// of the stream from the line it names.
func FuzzSplitYAMLIsYAMLReader(f *testing.F) {
	for _, seed := range []string{
		"---\n---\na: 1\n", "a: 1\n---\n---\n---\nb: 2\n", "--- # c\n# d\na: 1\n---\nb: 2",
		"a\n---x\n---\nb\n", "---\r\n---\r\na: 1\r\n", "a: 1\r\r\n---\rx\n--- \n", "\ufeff---\nx\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// want: YAMLReader's documents, as YAMLReader's LineReader reads lines.
		var want [][]byte
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			chunk, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				continue
			}
			if isSeparator(chunk) {
				_, chunk, _ = bytes.Cut(chunk, []byte("\n"))
			}
			if hasContent(chunk) {
				want = append(want, chunk)
			}
		}
		docs := splitAll(data)
		lines := bytes.SplitAfter(data, []byte("\n"))
		var got [][]byte
		for i, d := range docs {
			if d.err != nil {
				continue
			}
			require.GreaterOrEqual(t, d.first, 1)
			require.True(t, bytes.HasPrefix(bytes.Join(lines[d.first-1:], nil), d.data), "document %q is not the stream's bytes from line %d", d.data, d.first)
			if i+1 < len(docs) && docs[i+1].err != nil && docs[i+1].line == d.first+bytes.Count(d.data, []byte("\n")) {
				continue // the lines right before a bad separator, which YAMLReader drops
			}
			got = append(got, asLineReader(d.data))
		}
		require.Equal(t, want, got)
	})
}

// hasContent tells whether a document has a line that is neither blank nor
// a comment.
func hasContent(doc []byte) bool {
	for l := range bytes.Lines(doc) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			return true
		}
	}
	return false
}

// asLineReader returns data as YAMLReader's LineReader gives its lines:
// without the "\r" of "\r\n" (a "\r" at the very end stays), each ended by
// "\n".
func asLineReader(data []byte) []byte {
	var out []byte
	br := bufio.NewReader(bytes.NewReader(data))
	for {
		l, err := br.ReadBytes('\n')
		if len(l) == 0 && err != nil {
			return out
		}
		if c, ok := bytes.CutSuffix(l, []byte("\n")); ok {
			l = bytes.TrimSuffix(c, []byte("\r"))
		}
		out = append(append(out, l...), '\n')
	}
}
