package manifest

import (
	"testing"
)

// FuzzParse reads arbitrary files as manifests: every input gives objects
// or errors, never a panic, and every error names the file.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web}\nspec: {replicas: 3}\n",
		"---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n",
		"a: &x [*x]\n",
		"{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"stringData\":{\"a\":\"b\"}}",
		"apiVersion: apps/v1beta1\nkind: StatefulSet\nmetadata: {name: old}\n---\n: bad\n",
		"on: yes\nkey: 0777\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, errs := Parse("f.yaml", data, "default")
		for _, err := range errs {
			if err == nil || err.Error() == "" {
				t.Fatalf("an empty error for %q", data)
			}
		}
	})
}
