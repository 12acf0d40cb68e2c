package audit

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/manifest"
	"github.com/stsguard/stsguard/rules"
)

// BenchmarkAudit reads the benchmark manifest of 10,000 objects (bench/gen)
// from a file and replays it, as `stsguard audit -f` does (manifest.Read,
// apply), without the output.
func BenchmarkAudit(b *testing.B) {
	data, err := exec.Command("go", "run", "../bench/gen", "-n", "10000").Output()
	require.NoError(b, err)
	e, err := rules.New(engine.DefaultConfig())
	require.NoError(b, err)
	file := filepath.Join(b.TempDir(), "objects.yaml")
	require.NoError(b, os.WriteFile(file, data, 0o644))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, errs := apply(e, manifest.Read([]string{file}, nil, "default"), nil)
		require.Empty(b, errs)
		require.Equal(b, 10000, r.Summary.Objects+r.Summary.Unchecked+1)
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "objects/s")
}
