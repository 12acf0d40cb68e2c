package webhook

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stsguard's admission metrics pass promlint (as `promtool check metrics`
// does: names, units, suffixes, help). A vector is gathered only once it
// has a series, so each case records one; a metric added to NewMetrics
// needs a case here.
func TestMetricsLint(t *testing.T) {
	cases := []struct {
		name   string
		record func(*Metrics)
	}{
		{"stsguard_findings_total", func(m *Metrics) { m.findings.WithLabelValues("weak-password", "Deny", "Secret", "CREATE").Inc() }},
		{"stsguard_mutations_total", func(m *Metrics) { m.mutations.WithLabelValues("termination-grace-period").Inc() }},
		{"stsguard_exemptions_total", func(m *Metrics) { m.exemptions.WithLabelValues("weak-password").Inc() }},
		{"stsguard_admission_errors_total", func(m *Metrics) { m.errors.WithLabelValues("StatefulSet", reasonBadRequest).Inc() }},
		{"stsguard_evaluation_duration_seconds", func(m *Metrics) {
			m.evaluation.WithLabelValues("StatefulSet", "CREATE", "validating").Observe(0.002)
		}},
	}
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	for _, tc := range cases {
		tc.record(m)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := testutil.GatherAndCount(reg, tc.name)
			require.NoError(t, err)
			require.Equal(t, 1, n, "the series recorded")
			problems, err := testutil.GatherAndLint(reg, tc.name)
			require.NoError(t, err)
			assert.Empty(t, problems)
		})
	}
	n, err := testutil.GatherAndCount(reg)
	require.NoError(t, err)
	assert.Equal(t, len(cases), n, "every series gathered is one a case recorded")
}
