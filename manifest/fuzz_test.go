package manifest

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse reads arbitrary files as manifests: every input gives objects
// or errors, never a panic, every error names the file, and every line is
// one of the file's (or, for an error, its end).
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web}\nspec: {replicas: 3}\n",
		"---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n",
		"a: &x [*x]\n",
		"{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"stringData\":{\"a\":\"b\"}}",
		"apiVersion: apps/v1beta1\nkind: StatefulSet\nmetadata: {name: old}\n---\n: bad\n",
		"on: yes\nkey: 0777\n",
		"a: 1\n--- x\nb: 2\n---\r\n# c\n---x\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, errs := Parse("f.yaml", data, "default")
		// The YAML parser counts a lone "\r" as a line break too, and may
		// place an error at the end of the stream, one line past the last.
		lines := bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) + 1
		for _, err := range errs {
			if err == nil || err.Error() == "" {
				t.Fatalf("an empty error for %q", data)
			}
			var e *Error
			if !errors.As(err, &e) || e.File != "f.yaml" || e.Line < 0 || e.Line > lines+1 {
				t.Fatalf("error %q of %q: not an *Error of f.yaml at one of its %d lines or the end", err, data, lines)
			}
		}
		for _, o := range objs {
			if o.File != "f.yaml" || o.Line < 1 || o.Line > lines {
				t.Fatalf("object %s at %s:%d of %q: not at one of its %d lines", o.Name, o.File, o.Line, data, lines)
			}
		}
	})
}
