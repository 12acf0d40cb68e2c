package manifest

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// write creates the files of tree (path relative to dir -> content) under dir.
func write(t *testing.T, dir string, tree map[string]string) {
	t.Helper()
	for name, content := range tree {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
}

func secret(name string) string {
	return "apiVersion: v1\nkind: Secret\nmetadata: {name: " + name + "}\n"
}

func TestFilesInKubectlOrder(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"b.yaml":        secret("b"),
		"a-b/x.yaml":    secret("a-b-x"),
		"a/x.yaml":      secret("a-x"),
		"a/sub/y.yml":   secret("a-sub-y"),
		"z.json":        `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"z"}}`,
		"A.YAML":        secret("upper"), // kubectl compares extensions case-sensitively
		"notes.txt":     "not a manifest",
		"c.yaml.orig":   secret("orig"),
		"Chart/c.yaml":  secret("chart"), // "C" sorts before "a"
		"a/sub/.hidden": "x",
	})
	rel := func(files []string) []string {
		out := make([]string, len(files))
		for i, f := range files {
			r, err := filepath.Rel(dir, f)
			require.NoError(t, err)
			out[i] = filepath.ToSlash(r)
		}
		return out
	}
	files, err := manifestFiles(dir)
	require.NoError(t, err)
	// filepath.Walk's order, as kubectl apply -f DIR --recursive: entries of
	// each directory by name, "a/..." before "a-b/..." (a sort of the full
	// paths would put "a-b/x.yaml" first, since '-' < '/').
	assert.Equal(t, []string{"Chart/c.yaml", "a/sub/y.yml", "a/x.yaml", "a-b/x.yaml", "b.yaml", "z.json"}, rel(files))

	// A file named explicitly is read whatever its extension.
	files, err = manifestFiles(filepath.Join(dir, "A.YAML"))
	require.NoError(t, err)
	assert.Equal(t, []string{"A.YAML"}, rel(files))
}

func TestLoadKeepsTheOrderObjectsReachTheAPIServer(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"d/2.yaml": secret("d2"),
		"d/1.yaml": secret("d1a") + "---\n" + secret("d1b"),
		"list.yaml": "apiVersion: v1\nkind: List\nitems:\n" +
			"- {apiVersion: v1, kind: Secret, metadata: {name: item1}}\n" +
			"- {apiVersion: v1, kind: Secret, metadata: {name: item2}}\n",
		"first.yaml": secret("first"),
	})
	objs, errs := load([]string{
		filepath.Join(dir, "first.yaml"), // files in the order given, not sorted
		filepath.Join(dir, "d"),
		"-",
		filepath.Join(dir, "list.yaml"),
	}, strings.NewReader(secret("stdin1")+"---\n"+secret("stdin2")), "default")
	require.Empty(t, errs)
	var names []string
	for _, o := range objs {
		names = append(names, o.Name)
	}
	assert.Equal(t, []string{"first", "d1a", "d1b", "d2", "stdin1", "stdin2", "item1", "item2"}, names)
}

// load reads every object under paths at once: Read without deferring
// any decoding, split into objects and errors.
func load(paths []string, stdin io.Reader, namespace string) ([]Object, []error) {
	return split(read(paths, stdin, namespace, false))
}
