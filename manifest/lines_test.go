package manifest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestParseReportsLines pins what Parse returns for a stream, object by
// object and error by error, with the file:line each carries: a finding of
// `stsguard audit` points there.
func TestParseReportsLines(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		objs []string // "Kind namespace/name @line"
		errs []string // Error()
	}{
		{
			name: "comments and blank lines before a document are not its line",
			in: "# header\n\napiVersion: v1\nkind: Secret\nmetadata: {name: a}\n" +
				"--- # a comment after the separator\n\n# only a comment: no document\n" +
				"---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n",
			objs: []string{"Secret default/a @3", "Secret default/b @10"},
		},
		{
			name: "a leading separator and separators in a row",
			in:   "---\n---\n\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n---\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: ns}\n---\n",
			objs: []string{"Namespace /ns @4", "Secret ns/s @9"},
		},
		{
			name: "a YAML syntax error is placed at the parser's line in the file",
			in: "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\n# c\n" +
				"apiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n  bad: [\n",
			objs: []string{"Secret default/a @1"},
			errs: []string{"f.yaml:10: yaml: line 6: did not find expected node content"},
		},
		{
			name: "a tab where indentation is expected",
			in:   "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n\tname: b\n",
			objs: []string{"Secret default/a @1"},
			errs: []string{"f.yaml:8: yaml: line 4: found character that cannot start any token"},
		},
		{
			name: "unknown fields are reported at the document's line, all of them",
			in:   "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\n\napiVersion: v1\nkind: Secret\nfoo: 1\nbar: 2\n",
			objs: []string{"Secret default/a @1"},
			errs: []string{"f.yaml:6: v1 Secret: unknown field \"bar\"\nunknown field \"foo\""},
		},
		{
			name: "not a Kubernetes object",
			in:   "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\nkind: Secret\n---\n- a\n",
			objs: []string{"Secret default/a @1"},
			errs: []string{
				"f.yaml:5: not a Kubernetes object: apiVersion and kind must be set",
				"f.yaml:7: not a Kubernetes object: json: cannot unmarshal array into Go value of type manifest.typeMeta",
			},
		},
		{
			name: "a separator followed by anything but a comment is kubectl's error, at its line; the stream goes on after it",
			in: "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n" +
				"--- x\napiVersion: v1\nkind: Secret\nmetadata: {name: c}\n---x\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: d}\n",
			objs: []string{"Secret default/a @1", "Secret default/b @5", "Secret default/c @9", "Secret default/d @14"},
			errs: []string{
				"f.yaml:8: invalid Yaml document separator: x",
				"f.yaml:12: invalid Yaml document separator: x",
			},
		},
		{
			name: "CRLF line ends",
			in:   "apiVersion: v1\r\nkind: Secret\r\nmetadata: {name: a}\r\n---\r\n\r\napiVersion: v1\r\nkind: Secret\r\nmetadata: {name: b}\r\n",
			objs: []string{"Secret default/a @1", "Secret default/b @6"},
		},
		{
			name: "no newline at the end",
			in:   "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}",
			objs: []string{"Secret default/a @1", "Secret default/b @5"},
		},
		{
			name: "a YAML error at the end of a file without a newline at the end",
			in:   "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: \"b",
			objs: []string{"Secret default/a @1"},
			errs: []string{"f.yaml:7: yaml: line 3: found unexpected end of stream"},
		},
		{
			name: "the items of a List at their own lines",
			in: "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\napiVersion: v1\nkind: List\nitems:\n" +
				"- {apiVersion: v1, kind: Secret, metadata: {name: i1}}\n\n" +
				"- apiVersion: v1\n  kind: Secret\n  x: 1\n" +
				"- apiVersion: v1\n  kind: Secret\n  metadata: {name: i3}\n",
			objs: []string{"Secret default/a @1", "Secret default/i1 @8", "Secret default/i3 @13"},
			errs: []string{"f.yaml:10: v1 Secret: unknown field \"x\""},
		},
		{
			name: "a JSON stream",
			in:   "\n\n{\"apiVersion\":\"v1\",\n\"kind\":\"Secret\",\"metadata\":{\"name\":\"a\"}}\n {\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"x\":1}\n{bad",
			objs: []string{"Secret default/a @3"},
			errs: []string{
				"f.yaml:5: v1 Secret: unknown field \"x\"",
				"f.yaml:6: not a Kubernetes object: invalid character 'b' looking for beginning of object key string",
			},
		},
		{
			name: "other kinds keep their name and line, without a typed object",
			in:   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: x}\ndata: {a: b}\n",
			objs: []string{"ConfigMap x/c @1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, errs := Parse("f.yaml", []byte(tc.in), "default")
			var gotObjs, gotErrs []string
			for _, o := range objs {
				gotObjs = append(gotObjs, fmt.Sprintf("%s %s/%s @%d", o.GVK.Kind, o.Namespace, o.Name, o.Line))
				assert.Equal(t, "f.yaml", o.File)
			}
			for _, e := range errs {
				gotErrs = append(gotErrs, e.Error())
			}
			assert.Equal(t, tc.objs, gotObjs)
			assert.Equal(t, tc.errs, gotErrs)
		})
	}
}

// TestParseKeepsDocumentOrder: documents are decoded in parallel, objects
// and errors still come in document order, each at its line.
func TestParseKeepsDocumentOrder(t *testing.T) {
	var in strings.Builder
	var wantObjs, wantErrs []string
	for i := range 300 {
		line := 4*i + 1
		if i%7 == 3 {
			fmt.Fprintf(&in, "apiVersion: v1\nkind: Secret\nbad%d: x\n---\n", i)
			wantErrs = append(wantErrs, fmt.Sprintf("f.yaml:%d: v1 Secret: unknown field \"bad%d\"", line, i))
			continue
		}
		fmt.Fprintf(&in, "apiVersion: v1\nkind: Secret\nmetadata: {name: s%d}\n---\n", i)
		wantObjs = append(wantObjs, fmt.Sprintf("s%d @%d", i, line))
	}
	objs, errs := Parse("f.yaml", []byte(in.String()), "default")
	var gotObjs, gotErrs []string
	for _, o := range objs {
		gotObjs = append(gotObjs, fmt.Sprintf("%s @%d", o.Name, o.Line))
	}
	for _, e := range errs {
		gotErrs = append(gotErrs, e.Error())
	}
	assert.Equal(t, wantObjs, gotObjs)
	assert.Equal(t, wantErrs, gotErrs)
}
