package background

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The background audit's metrics pass promlint; a metric added to
// NewMetrics needs a case here.
func TestMetricsLint(t *testing.T) {
	cases := []struct {
		name   string
		record func(*Metrics)
	}{
		{"stsguard_violations", func(m *Metrics) {
			m.setViolations(map[violation]int{{"weak-password", "Deny", "db"}: 2}, nil)
		}},
		{"stsguard_background_audit_leader", func(m *Metrics) { m.leader.Set(1) }},
		{"stsguard_background_audit_last_scan_duration_seconds", func(m *Metrics) { m.scanDuration.Set(1.5) }},
		{"stsguard_background_audit_last_scan_timestamp_seconds", func(m *Metrics) { m.scanTimestamp.Set(1.7e9) }},
		{"stsguard_background_audit_objects", func(m *Metrics) { m.objects.Set(3) }},
		{"stsguard_background_audit_judgments_total", func(m *Metrics) { m.judgments.Inc() }},
		{"stsguard_background_audit_report_writes_total", func(m *Metrics) { m.writes.WithLabelValues("create").Inc() }},
	}
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg, true)
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
}

// A violation's series goes when its count does; without the namespace
// label, namespaces add up.
func TestSetViolations(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg, false)
	require.NoError(t, err)
	first := map[violation]int{{"weak-password", "Deny", ""}: 2, {"readiness-probe-missing", "Warn", ""}: 1}
	m.setViolations(first, nil)
	assert.Equal(t, 2, testutil.CollectAndCount(m.violations))
	m.setViolations(map[violation]int{{"weak-password", "Deny", ""}: 1}, first)
	assert.Equal(t, 1, testutil.CollectAndCount(m.violations))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.violations.WithLabelValues("weak-password", "Deny")))
	m.stopped()
	assert.Equal(t, 0, testutil.CollectAndCount(m.violations))
}
