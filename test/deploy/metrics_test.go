package deploy

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	_ "sigs.k8s.io/controller-runtime/pkg/webhook" // registers controller_runtime_webhook_* in metrics.Registry

	"github.com/stsguard/stsguard/background"
	"github.com/stsguard/stsguard/certs"
	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/lookup"
	"github.com/stsguard/stsguard/policy"
	"github.com/stsguard/stsguard/test/harness"
	"github.com/stsguard/stsguard/webhook"
)

// Shared by the alert rules and the dashboard: which metrics exist, and a
// check of the PromQL expressions that use them.

// Who serves a metric.
const (
	fromStsguard          = "stsguard"
	fromControllerRuntime = "controller-runtime" // in stsguard's process, on the same /metrics
	fromAPIServer         = "kube-apiserver"
	fromPrometheus        = "Prometheus"
)

// metricInfo is what the checks know of one metric.
type metricInfo struct {
	typ    dto.MetricType
	labels []string
	source string
}

// servedByStsguardPods tells whether the metric comes from scraping
// stsguard's pods (so a query must say which stsguard: namespace and job).
func (m metricInfo) servedByStsguardPods() bool {
	return m.source != fromAPIServer
}

// targetLabels are the labels Prometheus adds to every series it scrapes
// from a Kubernetes target (a ServiceMonitor adds all of them).
var targetLabels = []string{"job", "instance", "namespace", "pod", "service", "container", "endpoint"}

// otherMetrics are the metrics other programs serve that the alerts and the
// dashboard use, with their labels: the apiserver's admission webhook
// metrics (k8s.io/apiserver pkg/admission/metrics), controller-runtime's
// webhook metrics (pkg/webhook/internal/metrics; their names are checked
// against controller-runtime's registry by
// TestAlertAndDashboardControllerRuntimeMetrics) and Prometheus' own up.
var otherMetrics = map[string]metricInfo{
	"up": {dto.MetricType_GAUGE, nil, fromPrometheus},
	"apiserver_admission_webhook_fail_open_count":            {dto.MetricType_COUNTER, []string{"name", "type"}, fromAPIServer},
	"apiserver_admission_webhook_rejection_count":            {dto.MetricType_COUNTER, []string{"name", "type", "operation", "error_type", "rejection_code"}, fromAPIServer},
	"apiserver_admission_webhook_request_total":              {dto.MetricType_COUNTER, []string{"name", "type", "operation", "code", "rejected"}, fromAPIServer},
	"apiserver_admission_webhook_admission_duration_seconds": {dto.MetricType_HISTOGRAM, []string{"name", "type", "operation", "rejected"}, fromAPIServer},
	"controller_runtime_webhook_requests_total":              {dto.MetricType_COUNTER, []string{"webhook", "code"}, fromControllerRuntime},
	"controller_runtime_webhook_latency_seconds":             {dto.MetricType_HISTOGRAM, []string{"webhook"}, fromControllerRuntime},
	"controller_runtime_webhook_requests_in_flight":          {dto.MetricType_GAUGE, []string{"webhook"}, fromControllerRuntime},
}

// recorder is a prometheus.Registerer that keeps the name, type and labels
// of every metric registered with it.
type recorder struct {
	t       *testing.T
	metrics map[string]metricInfo
}

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}\}$`)
)

func (r *recorder) Register(c prometheus.Collector) error {
	var typ dto.MetricType
	switch c.(type) {
	case *prometheus.CounterVec:
		typ = dto.MetricType_COUNTER
	case *prometheus.GaugeVec:
		typ = dto.MetricType_GAUGE
	case *prometheus.HistogramVec:
		typ = dto.MetricType_HISTOGRAM
	case *prometheus.SummaryVec:
		typ = dto.MetricType_SUMMARY
	default: // a single metric: ask it what it is
		ch := make(chan prometheus.Metric, 1)
		c.Collect(ch)
		var m dto.Metric
		require.NoError(r.t, (<-ch).Write(&m))
		switch {
		case m.Counter != nil:
			typ = dto.MetricType_COUNTER
		case m.Gauge != nil:
			typ = dto.MetricType_GAUGE
		case m.Histogram != nil:
			typ = dto.MetricType_HISTOGRAM
		case m.Summary != nil:
			typ = dto.MetricType_SUMMARY
		default:
			r.t.Fatalf("collector %T: unknown metric type", c)
		}
	}
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		name, labels := descName.FindStringSubmatch(d.String()), descLabels.FindStringSubmatch(d.String())
		require.True(r.t, name != nil && labels != nil, "cannot read %s", d)
		info := metricInfo{typ: typ, source: fromStsguard}
		for _, l := range strings.Split(labels[1], ",") {
			if l != "" {
				info.labels = append(info.labels, strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"))
			}
		}
		r.metrics[name[1]] = info
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *recorder) Unregister(prometheus.Collector) bool { return false }

// knownMetrics returns every metric stsguard registers (created by the
// constructors the server calls) and otherMetrics.
func knownMetrics(t *testing.T) map[string]metricInfo {
	t.Helper()
	rec := &recorder{t: t, metrics: map[string]metricInfo{}}
	_, err := webhook.NewMetrics(rec)
	require.NoError(t, err)
	_, err = certs.NewMetrics(rec)
	require.NoError(t, err)
	_, err = policy.NewHolder("", engine.DefaultConfig(), 0, rec, logr.Discard())
	require.NoError(t, err)
	_, err = lookup.NewLive(nil, lookup.LiveOptions{Registerer: rec})
	require.NoError(t, err)
	_, err = background.NewMetrics(rec, true)
	require.NoError(t, err)
	known := map[string]metricInfo{}
	for name, m := range otherMetrics {
		known[name] = m
	}
	for name, m := range rec.metrics {
		known[name] = m
	}
	return known
}

// metricNameInSource matches the name of a metric stsguard's code creates.
var metricNameInSource = regexp.MustCompile(`Name:\s*"(stsguard_\w+)"`)

// The constructors knownMetrics calls create every metric stsguard's code
// names: a metric added elsewhere must be added to knownMetrics (and then
// to the dashboard, which must show every stsguard metric).
func TestAlertAndDashboardMetricsAreAllOfStsguards(t *testing.T) {
	known := knownMetrics(t)
	root := harness.Root()
	found := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == "test" || rel == "bin" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricNameInSource.FindAllStringSubmatch(string(src), -1) {
			found++
			assert.Contains(t, known, m[1], "%s creates %s; knownMetrics does not register it", rel, m[1])
		}
		return nil
	})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, found, 10, "metric names found in stsguard's source")
}

// The controller-runtime metrics of otherMetrics are registered by the
// controller-runtime stsguard is built with: registering another collector
// of the same name in its registry is refused.
func TestAlertAndDashboardControllerRuntimeMetrics(t *testing.T) {
	for name, m := range otherMetrics {
		if m.source != fromControllerRuntime {
			continue
		}
		probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "probe"})
		err := metrics.Registry.Register(probe)
		if err == nil {
			metrics.Registry.Unregister(probe)
		}
		if assert.Error(t, err, "controller-runtime registers no %s", name) {
			assert.Contains(t, err.Error(), "same fully-qualified name", name)
		}
	}
}

// tester is the part of *testing.T checkPromQL reports to.
type tester interface {
	assert.TestingT
	Helper()
}

// selectorUse is one vector selector of an expression and the metric it
// selects.
type selectorUse struct {
	vs     *parser.VectorSelector
	metric string // the name the metric is registered under (without _bucket, ...)
	info   metricInfo
}

// checkPromQL parses expr with Prometheus's parser and checks that every
// metric it selects is known, with a suffix its type has (_bucket of a
// histogram, ...), and that every label it matches on or groups by is one
// the metric has or a target label. It returns the selectors, for checks of
// their own.
func checkPromQL(t tester, where, expr string, known map[string]metricInfo) []selectorUse {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if !assert.NoError(t, err, "%s: %s", where, expr) {
		return nil
	}
	var uses []selectorUse
	// labelsOf returns the labels the series of vs can have.
	labelsOf := func(vs *parser.VectorSelector) []string {
		if vs.Name == "" {
			assert.Fail(t, "selector without a metric name", "%s: %s", where, vs)
			return nil
		}
		u, extra, ok := resolve(vs.Name, known)
		if !assert.True(t, ok, "%s: unknown metric %s (or a suffix its type does not have)", where, vs.Name) {
			return nil
		}
		u.vs = vs
		uses = append(uses, u)
		return slices.Concat(u.info.labels, targetLabels, extra)
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			have := labelsOf(n)
			for _, m := range n.LabelMatchers {
				if m.Name != "__name__" && have != nil {
					assert.Contains(t, have, m.Name, "%s: %s has no label %s", where, n.Name, m.Name)
				}
			}
		case *parser.AggregateExpr:
			if n.Without || len(n.Grouping) == 0 {
				return nil
			}
			var have []string
			parser.Inspect(n.Expr, func(c parser.Node, _ []parser.Node) error {
				if vs, ok := c.(*parser.VectorSelector); ok {
					if u, extra, ok := resolve(vs.Name, known); ok {
						have = slices.Concat(have, u.info.labels, targetLabels, extra)
					}
				}
				return nil
			})
			if have == nil { // no known metric: reported with its selector
				return nil
			}
			for _, l := range n.Grouping {
				assert.Contains(t, have, l, "%s: %s by (%s): no series aggregated has the label %s", where, n.Op, strings.Join(n.Grouping, ", "), l)
			}
		}
		return nil
	})
	return uses
}

// resolve finds the metric a series name belongs to: the metric itself, or
// a histogram's _bucket, _sum, _count, or a summary's _sum, _count. extra
// are the labels the suffix adds (le, quantile).
func resolve(name string, known map[string]metricInfo) (selectorUse, []string, bool) {
	if m, ok := known[name]; ok && m.typ != dto.MetricType_HISTOGRAM {
		var extra []string
		if m.typ == dto.MetricType_SUMMARY {
			extra = []string{"quantile"}
		}
		return selectorUse{metric: name, info: m}, extra, true
	}
	for suffix, types := range map[string][]dto.MetricType{
		"_bucket": {dto.MetricType_HISTOGRAM},
		"_sum":    {dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY},
		"_count":  {dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY},
	} {
		base, ok := strings.CutSuffix(name, suffix)
		if m, found := known[base]; ok && found && slices.Contains(types, m.typ) {
			var extra []string
			if suffix == "_bucket" {
				extra = []string{"le"}
			}
			return selectorUse{metric: base, info: m}, extra, true
		}
	}
	return selectorUse{}, nil, false
}

// failures records what a check such as checkPromQL reports, for testing
// the check.
type failures struct{ msgs []string }

func (f *failures) Errorf(format string, args ...any) {
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}
func (f *failures) Helper() {}

// checkPromQL finds wrong metric names, suffixes and labels.
func TestAlertAndDashboardPromQLCheck(t *testing.T) {
	known := knownMetrics(t)
	for expr, wantOK := range map[string]bool{
		`sum by (rule) (rate(stsguard_findings_total{action="Deny"}[5m]))`:                                       true,
		`histogram_quantile(0.99, sum by (le, webhook) (rate(stsguard_evaluation_duration_seconds_bucket[5m])))`: true,
		`rate(stsguard_evaluation_duration_seconds_count{kind="StatefulSet", namespace="x"}[5m])`:                true,
		`sum(rate(apiserver_admission_webhook_fail_open_count{name=~".+"}[5m]))`:                                 true,
		`min(stsguard_certificate_expiry_timestamp_seconds) - time()`:                                            true,
		`rate(stsguard_findings_total[5m]`:                                                                       false, // not PromQL
		`rate(stsguard_finding_total[5m])`:                                                                       false, // no such metric
		`rate(stsguard_policy_reloads[5m])`:                                                                      false, // without _total
		`histogram_quantile(0.99, rate(stsguard_evaluation_duration_seconds[5m]))`:                               false, // a histogram without _bucket
		`rate(stsguard_findings_total_bucket[5m])`:                                                               false, // a counter has no buckets
		`stsguard_findings_total{rules="x"}`:                                                                     false, // no such label
		`sum by (rules) (stsguard_findings_total)`:                                                               false, // no such label
		`sum by (le) (stsguard_evaluation_duration_seconds_count)`:                                               false, // le is on _bucket only
		`{__name__=~"stsguard_.+"}`:                                                                              false, // no metric name
	} {
		f := &failures{}
		checkPromQL(f, "test", expr, known)
		assert.Equal(t, wantOK, len(f.msgs) == 0, "%s: %v", expr, f.msgs)
	}
}
