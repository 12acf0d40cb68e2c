package harness

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Reading Prometheus metrics in tests. Every source is a
// prometheus.Gatherer, so that client_golang's testutil (GatherAndCount,
// GatherAndCompare, GatherAndLint) reads it: a registry of the test's
// process as it is (controller-runtime's metrics.Registry, where an
// in-process stsguard registers its metrics), an HTTP /metrics endpoint
// through MetricsEndpoint or APIServerMetrics. scrape is the one place the
// tests parse the text exposition format.

// scrape is a Gatherer that reads the text exposition format from get on
// every Gather.
type scrape func() (io.ReadCloser, error)

func (get scrape) Gather() ([]*dto.MetricFamily, error) {
	body, err := get()
	if err != nil {
		return nil, err
	}
	defer body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := parser.TextToMetricFamilies(body)
	if err != nil {
		return nil, err
	}
	// In a registry's order: sorted by name.
	families := make([]*dto.MetricFamily, 0, len(byName))
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		families = append(families, byName[name])
	}
	return families, nil
}

// MetricsEndpoint returns the metrics served over plain HTTP at url (such
// as "http://127.0.0.1:8080/metrics"), scraped anew on every Gather.
func MetricsEndpoint(url string) prometheus.Gatherer {
	return scrape(func() (io.ReadCloser, error) {
		resp, err := http.Get(url)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return resp.Body, nil
	})
}

// APIServerMetrics returns the apiserver's /metrics, read with cfg's
// credentials anew on every Gather.
func APIServerMetrics(cfg *rest.Config) prometheus.Gatherer {
	return scrape(func() (io.ReadCloser, error) {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		return cs.Discovery().RESTClient().Get().AbsPath("/metrics").Stream(context.Background())
	})
}

// Value gathers g and returns the sum, over the series of the metric name
// whose labels include want, of the counter, gauge or untyped value, or of
// the histogram's or summary's sample count; 0 when there is none (a
// vector counts nothing before its first use). For a comparison of whole
// metric families, use testutil.GatherAndCompare.
func Value(t testing.TB, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	i := slices.IndexFunc(families, func(f *dto.MetricFamily) bool { return f.GetName() == name })
	if i < 0 {
		return 0
	}
	selector := labels.SelectorFromSet(want)
	var sum float64
	for _, m := range families[i].GetMetric() {
		have := labels.Set{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		if !selector.Matches(have) {
			continue
		}
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue() +
			float64(m.GetHistogram().GetSampleCount()+m.GetSummary().GetSampleCount())
	}
	return sum
}
