package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeAll decodes every deferred entry and splits the entries as Load
// does. It checks that each deferred entry's kind, namespace, name, file
// and line are those of its decoded object.
func decodeAll(t testing.TB, entries []Entry) ([]Object, []error) {
	t.Helper()
	var objs []Object
	var errs []error
	for i := range entries {
		e := &entries[i]
		was := e.Deferred()
		head := e.Object
		o, err := e.Decode()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if was {
			require.NotNil(t, o.Object)
			require.False(t, e.Deferred(), "Decode drops the JSON")
			o2 := o
			o2.Object = nil
			require.Equal(t, head, o2, "a deferred entry's header is its object's")
		}
		objs = append(objs, o)
	}
	return objs, errs
}

func errorStrings(errs []error) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

// TestReadDecodesAsLoad: Read, then Decode of each entry, gives what Load
// gives, object by object and error by error, in the same order, for the
// repository's manifests and for documents chosen to fail each step.
func TestReadDecodesAsLoad(t *testing.T) {
	dir := t.TempDir()
	docs := map[string]string{
		"defaults.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData: {k: v}\n---\n" +
			"apiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: other}\n",
		"strict.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: a, bogus: 1}\n---\n" +
			"apiVersion: v1\nkind: Secret\nmetadata: {name: b, namespace: 5}\n---\n" +
			"apiVersion: v1\nkind: Secret\nmetadata: x\n---\n" +
			"apiVersion: v1\nkind: Secret\nmetadata: {Namespace: x, name: c}\n---\n" +
			"apiVersion: v1\nkind: Secret\nmetadata: null\n---\n" +
			"apiVersion: v1\nkind: Secret\nmetadata: {namespace: null, name: d}\n",
		"kinds.yaml": "apiVersion: apps/v1beta1\nkind: StatefulSet\nmetadata: {name: old}\nspec: {template: {metadata: {labels: {a: b}}}}\n---\n" +
			"apiVersion: apps/v2\nkind: StatefulSet\nmetadata: {name: future}\n---\n" +
			"apiVersion: a/b/c\nkind: Secret\nmetadata: {name: bad-version}\n---\n" +
			"apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: pvc}\n---\n" +
			"apiVersion: v1\nkind: Namespace\nmetadata: {name: ns, namespace: ignored}\n---\n" +
			"apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: sc}\nprovisioner: x\n---\n" +
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: n}\n",
		"list.yaml": "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: a}\n" +
			"- apiVersion: v1\n  kind: Secret\n  bad: 1\n- 5\n",
		"broken.yaml": "a: [\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: after}\n--- x\nkind: Secret\n",
		"stream.json": `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"j","namespace":"n"}}` + "\n" +
			`{"apiVersion":"v1","kind":"Service","metadata":{"name":"k"},"spec":{"bad":1}}` + "\n{",
	}
	write(t, dir, docs)
	for _, tc := range []struct {
		name  string
		paths []string
		stdin string
	}{
		{"each kind of failure", []string{filepath.Join(dir, "strict.yaml"), filepath.Join(dir, "kinds.yaml"), filepath.Join(dir, "broken.yaml")}, ""},
		{"defaults and a List", []string{filepath.Join(dir, "defaults.yaml"), filepath.Join(dir, "list.yaml")}, ""},
		{"a JSON stream and stdin", []string{filepath.Join(dir, "stream.json"), "-"}, docs["defaults.yaml"]},
		{"a directory and a missing path", []string{dir, filepath.Join(dir, "missing.yaml")}, ""},
		{"the examples", []string{"../examples"}, ""},
		{"audit's test manifests", []string{"../test/testdata/audit"}, ""},
		{"the rules' fixtures", []string{"../test/testdata/rules"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range tc.paths {
				if strings.HasPrefix(p, "..") {
					_, err := os.Stat(p)
					require.NoError(t, err)
				}
			}
			wantObjs, wantErrs := load(tc.paths, strings.NewReader(tc.stdin), "default")
			entries := Read(tc.paths, strings.NewReader(tc.stdin), "default")
			gotObjs, gotErrs := decodeAll(t, entries)
			assert.Equal(t, wantObjs, gotObjs)
			assert.Equal(t, errorStrings(wantErrs), errorStrings(gotErrs))
			require.Len(t, gotErrs, len(wantErrs))
			for i := range wantErrs {
				var we, ge *Error
				assert.Equal(t, errors.As(wantErrs[i], &we), errors.As(gotErrs[i], &ge))
				assert.Equal(t, we, ge)
			}
		})
	}
}

// TestReadDefers pins which entries Read leaves for Decode: single objects
// of the namespaced kinds stsguard reads, in a version it reads, nothing
// else.
func TestReadDefers(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		deferred  bool
	}{
		{"a StatefulSet", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: a}\n", true},
		{"an apps/v1beta2 StatefulSet", "apiVersion: apps/v1beta2\nkind: StatefulSet\nmetadata: {name: a}\n", true},
		{"a Service", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n", true},
		{"a Secret with an unknown field", "apiVersion: v1\nkind: Secret\nfoo: 1\n", true},
		{"a PersistentVolumeClaim", "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: a}\n", true},
		{"a StorageClass", "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: a}\nprovisioner: x\n", false},
		{"a Namespace", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n", false},
		{"a Deployment", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n", false},
		{"a Secret of another group", "apiVersion: example.com/v1\nkind: Secret\nmetadata: {name: a}\n", false},
		{"an apiVersion that does not parse", "apiVersion: a/b/c\nkind: Secret\n", false},
		{"a List of Secrets", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: a}}\n", false},
		{"not an object", "- a\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries := parse("f.yaml", []byte(tc.doc), "default", true)
			require.Len(t, entries, 1)
			assert.Equal(t, tc.deferred, entries[0].Deferred())
			if tc.deferred {
				assert.Nil(t, entries[0].Object.Object)
				_, first := entries[0].Decode()
				assert.False(t, entries[0].Deferred())
				_, again := entries[0].Decode()
				require.Error(t, again, "a deferred entry decodes once")
				assert.Contains(t, again.Error(), "decoded already")
				if first == nil {
					assert.NotEqual(t, first, again)
				}
			}
		})
	}
}

// FuzzReadDecodesAsParse: for any file, the deferred path gives what Parse
// gives.
func FuzzReadDecodesAsParse(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web, namespace: n}\nspec: {replicas: 3}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: 5}\n---\napiVersion: v1\nkind: Secret\nmetadata: {NAME: a}\n",
		"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"a\",\"namespace\":\"b\",\"namespace\":\"c\"}}",
		"apiVersion: v1\nkind: Secret\nmetadata: {\"n\\x61me\": a}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		wantObjs, wantErrs := Parse("f.yaml", data, "default")
		gotObjs, gotErrs := decodeAll(t, parse("f.yaml", data, "default", true))
		require.Equal(t, wantObjs, gotObjs)
		require.Equal(t, errorStrings(wantErrs), errorStrings(gotErrs))
	})
}
