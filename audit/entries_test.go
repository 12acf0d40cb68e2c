package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/manifest"
)

// TestDeferredDecodingReportsAsDecodedFirst: replaying manifest.Read's
// entries, each namespace decoded just before its replay, reports what
// replaying the same entries decoded up front reports, errors included, in
// every output format, on one CPU and on four.
func TestDeferredDecodingReportsAsDecodedFirst(t *testing.T) {
	dir := t.TempDir()
	var many strings.Builder
	for i, ns := range []string{"a", "b", "c", "a", "d", "b"} {
		if i == 2 {
			many.WriteString(fastClass)
		}
		for _, doc := range []string{dbService, dbStatefulSet, dbSecret, clusterIPService, webStatefulSet} {
			many.WriteString(strings.Replace(doc, "metadata: {", "metadata: {namespace: "+ns+", ", 1))
		}
	}
	bad := "apiVersion: v1\nkind: Secret\nmetadata: {name: x, namespace: a}\nbogus: 1\n---\n" +
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: a}\n---\n" +
		"a: [\n---\n" +
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n" +
		"apiVersion: v1\nkind: Service\nmetadata: {name: y, namespace: b}\nspec: {clusterIP: 5}\n---\n" +
		"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: l, namespace: c}\n  stringData: {password: x}\n- 5\n"
	for name, content := range map[string]string{"1-many.yaml": many.String(), "2-bad.yaml": bad, "3-again.yaml": many.String()} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	live := []manifest.Object{liveService("10.0.0.7")}
	e := newEngine(t)
	for _, tc := range []struct {
		name     string
		paths    []string
		existing []manifest.Object
	}{
		{"namespaces interleaved, re-applied, with bad documents", []string{dir}, nil},
		{"over live objects", []string{dir}, live},
		{"the examples", []string{"../examples"}, nil},
		{"audit's test manifests", []string{"../test/testdata/audit"}, nil},
		{"the rules' fixtures", []string{"../test/testdata/rules"}, live},
	} {
		for _, procs := range []int{1, 4} {
			t.Run(tc.name, func(t *testing.T) {
				prev := runtime.GOMAXPROCS(procs)
				defer runtime.GOMAXPROCS(prev)
				read := manifest.Read(tc.paths, nil, "default")
				decoded := make([]manifest.Entry, len(read))
				for i := range read {
					decoded[i].Object, decoded[i].Err = read[i].Decode()
				}
				want, errs := apply(e, decoded, tc.existing)
				want.AddErrors(errs)
				got, gotErrs := apply(e, manifest.Read(tc.paths, nil, "default"), tc.existing)
				got.AddErrors(gotErrs)
				require.NotEmpty(t, want.Objects)
				assert.Equal(t, want.Summary, got.Summary)
				for _, format := range Formats() {
					var w, g bytes.Buffer
					require.NoError(t, Write(&w, want, format, false, engine.Deny))
					require.NoError(t, Write(&g, got, format, false, engine.Deny))
					assert.Equal(t, w.String(), g.String(), format)
				}
			})
		}
	}
}
