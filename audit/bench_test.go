package audit

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/manifest"
	"github.com/stsguard/stsguard/rules"
)

// BenchmarkAudit reads and judges the benchmark manifest of 10,000 objects
// (bench/gen) and replays it, as `stsguard audit -f` does, without the
// output.
func BenchmarkAudit(b *testing.B) {
	data, err := exec.Command("go", "run", "../bench/gen", "-n", "10000").Output()
	require.NoError(b, err)
	e, err := rules.New(engine.DefaultConfig())
	require.NoError(b, err)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		objs, errs := manifest.Parse("objects.yaml", data, "default")
		require.Empty(b, errs)
		r := Apply(e, objs, nil)
		require.Equal(b, 10000, r.Summary.Objects+r.Summary.Unchecked+1)
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "objects/s")
}
