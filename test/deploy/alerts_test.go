package deploy

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/stsguard/stsguard/test/harness"
)

// The alert rules in deploy/prometheus are valid Prometheus rules (checked
// as `promtool check rules` checks them) and every metric they use exists
// with the labels they name: stsguard's are the ones it registers
// (checkPromQL).
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

	known := knownMetrics(t)
	alerts := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts++
			assert.NotEmpty(t, r.Labels["severity"], "%s: severity label", r.Alert)
			assert.NotEmpty(t, r.Annotations["summary"], "%s: summary", r.Alert)
			checkPromQL(t, r.Alert, r.Expr, known)
		}
	}
	assert.GreaterOrEqual(t, alerts, 8)
	for _, want := range []string{"stsguard_certificate_expiry_timestamp_seconds", "stsguard_admission_errors_total", "stsguard_evaluation_duration_seconds"} {
		assert.Contains(t, string(raw), want, "an alert on %s", want)
	}
}
