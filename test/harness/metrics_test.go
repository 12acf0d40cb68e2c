package harness

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testRegistry has a counter vector, a gauge vector and a histogram
// vector, each with two series.
func testRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	findings := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_findings_total", Help: "Findings."}, []string{"rule", "action"})
	expiry := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_expiry_timestamp_seconds", Help: "Expiry."}, []string{"certificate"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "test_duration_seconds", Help: "Latency.", Buckets: []float64{0.1, 1}}, []string{"webhook"})
	reg.MustRegister(findings, expiry, latency)
	findings.WithLabelValues("weak-password", "Deny").Add(3)
	findings.WithLabelValues("weak-password", "Warn").Add(2)
	findings.WithLabelValues("probe", "Deny").Inc()
	expiry.WithLabelValues("serving").Set(1700000000)
	expiry.WithLabelValues("ca").Set(1800000000)
	latency.WithLabelValues("mutating").Observe(0.05)
	latency.WithLabelValues("mutating").Observe(0.5)
	latency.WithLabelValues("validating").Observe(2)
	return reg
}

func TestValue(t *testing.T) {
	reg := testRegistry(t)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	for _, tc := range []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"a counter's series", "test_findings_total", map[string]string{"rule": "weak-password", "action": "Deny"}, 3},
		{"counters summed over a label left out", "test_findings_total", map[string]string{"rule": "weak-password"}, 5},
		{"every series", "test_findings_total", nil, 6},
		{"no series with the labels", "test_findings_total", map[string]string{"rule": "other"}, 0},
		{"a label the metric does not have", "test_findings_total", map[string]string{"kind": "Secret"}, 0},
		{"a gauge", "test_expiry_timestamp_seconds", map[string]string{"certificate": "ca"}, 1800000000},
		{"a histogram's sample count", "test_duration_seconds", map[string]string{"webhook": "mutating"}, 2},
		{"histograms summed", "test_duration_seconds", nil, 3},
		{"no such metric", "test_finding_total", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Value(t, reg, tc.metric, tc.labels), "from the registry")
			assert.Equal(t, tc.want, Value(t, MetricsEndpoint(srv.URL), tc.metric, tc.labels), "scraped over HTTP")
		})
	}
}

// What MetricsEndpoint parses is what the registry holds, family by family.
func TestMetricsEndpointGathersWhatIsServed(t *testing.T) {
	reg := testRegistry(t)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	names := []string{"test_findings_total", "test_expiry_timestamp_seconds", "test_duration_seconds"}
	served, err := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain, names...)
	require.NoError(t, err)
	require.Contains(t, string(served), "test_duration_seconds_count")
	require.NoError(t, testutil.GatherAndCompare(MetricsEndpoint(srv.URL), strings.NewReader(string(served))))
	n, err := testutil.GatherAndCount(MetricsEndpoint(srv.URL))
	require.NoError(t, err)
	assert.Equal(t, 7, n, "series served")

	missing := httptest.NewServer(http.NotFoundHandler())
	defer missing.Close()
	_, err = MetricsEndpoint(missing.URL).Gather()
	assert.ErrorContains(t, err, "404")
}
