package manifest

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkParse reads the audit benchmark's manifest of 10,000 objects
// (bench/gen): splitting and decoding only, as `stsguard audit -f` does
// before judging.
func BenchmarkParse(b *testing.B) {
	data, err := exec.Command("go", "run", "../bench/gen", "-n", "10000").Output()
	require.NoError(b, err)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		objs, errs := Parse("objects.yaml", data, "default")
		require.Empty(b, errs)
		require.Len(b, objs, 10000)
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "objects/s")
}
