package deploy

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/stsguard/stsguard/certs"
	"github.com/stsguard/stsguard/policy"
	"github.com/stsguard/stsguard/test/harness"
	"github.com/stsguard/stsguard/webhook"
	"github.com/stsguard/stsguard/webhook/rules"
)

// recorder is a prometheus.Registerer that keeps the names of the metrics
// registered with it.
type recorder struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}
func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}
func (r *recorder) Unregister(prometheus.Collector) bool { return false }

// Metrics other programs serve that the alerts use: the apiserver's
// admission webhook metrics (k8s.io/apiserver pkg/admission/metrics),
// controller-runtime's webhook metrics (pkg/webhook/internal/metrics) and
// Prometheus' own up.
var external = map[string]bool{
	"up": true,
	"apiserver_admission_webhook_fail_open_count":            true,
	"apiserver_admission_webhook_rejection_count":            true,
	"apiserver_admission_webhook_admission_duration_seconds": true,
	"controller_runtime_webhook_requests_total":              true,
	"controller_runtime_webhook_latency_seconds":             true,
}

// The alert rules in deploy/prometheus are valid Prometheus rules (checked
// as `promtool check rules` checks them) and every metric they use exists:
// stsguard's are the ones it registers.
func TestPrometheusAlertRules(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(harness.Root(), "deploy", "prometheus", "prometheusrule.yaml"))
	require.NoError(t, err)
	var obj struct {
		APIVersion string         `json:"apiVersion"`
		Kind       string         `json:"kind"`
		Metadata   map[string]any `json:"metadata"`
		Spec       map[string]any `json:"spec"`
	}
	require.NoError(t, yaml.UnmarshalStrict(raw, &obj))
	require.Equal(t, "PrometheusRule", obj.Kind)
	spec, err := yaml.Marshal(obj.Spec)
	require.NoError(t, err)
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.Parse(spec, false, model.UTF8Validation, p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.Empty(t, errs)

	rec := &recorder{names: map[string]bool{}}
	_, err = webhook.NewMetrics(rec)
	require.NoError(t, err)
	_, err = certs.NewMetrics(rec)
	require.NoError(t, err)
	_, err = policy.NewHolder("", rules.DefaultConfig(), 0, rec, logr.Discard())
	require.NoError(t, err)

	alerts := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts++
			expr, err := p.ParseExpr(r.Expr)
			require.NoError(t, err, r.Alert)
			assert.NotEmpty(t, r.Labels["severity"], "%s: severity label", r.Alert)
			assert.NotEmpty(t, r.Annotations["summary"], "%s: summary", r.Alert)
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				name := vs.Name
				if strings.HasPrefix(name, "stsguard_") {
					for _, suffix := range []string{"_bucket", "_sum", "_count"} {
						if base, ok := strings.CutSuffix(name, suffix); ok && rec.names[base] {
							name = base
						}
					}
					assert.True(t, rec.names[name], "%s: stsguard registers no metric %s", r.Alert, vs.Name)
					return nil
				}
				base, _ := strings.CutSuffix(name, "_bucket")
				assert.True(t, external[base], "%s: unknown metric %s", r.Alert, vs.Name)
				return nil
			})
		}
	}
	assert.GreaterOrEqual(t, alerts, 8)
	for _, want := range []string{"stsguard_certificate_expiry_timestamp_seconds", "stsguard_admission_errors_total", "stsguard_evaluation_duration_seconds"} {
		assert.Contains(t, string(raw), want, "an alert on %s", want)
	}
}
