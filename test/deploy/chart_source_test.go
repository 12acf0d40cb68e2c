package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/test/harness"
)

// The chart is the one source of truth: the manifests of deploy/ that it
// renders are generated from it, with hack/helm/deploy.sh and the values
// of hack/helm/deploy-values (make chart), and committed. Rendering them
// again gives the committed files byte for byte.
var chartGenerated = []string{
	"deploy/base/stsguard.yaml",
	"deploy/cert-manager/certificates.yaml",
	"deploy/self-signed/rbac.yaml",
	"deploy/prometheus/prometheusrule.yaml",
}

func TestChartGeneratesDeploy(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command(filepath.Join(harness.Root(), "hack", "helm", "deploy.sh"), out)
	cmd.Env = append(os.Environ(), "HELM="+helmBinary(t))
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", msg)
	for _, f := range chartGenerated {
		want, err := os.ReadFile(filepath.Join(out, f))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(harness.Root(), f))
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), "%s is stale: run `make chart` (it is generated from charts/stsguard)", f)
	}
}

// For the same settings, kustomize's render of each directory of deploy/
// is the chart's render: every object, field for field (the Namespace,
// which Helm does not render, and the Helm-only labels aside). The base is
// the chart with hack/helm/deploy-values/base.yaml; the overlays' own
// patches must do what the chart's certificate modes do.
func TestChartEqualsKustomize(t *testing.T) {
	for _, c := range []struct {
		dir    string
		values map[string]any
	}{
		{"base", chartValuesFile(t, "base.yaml")},
		{"cert-manager", map[string]any{"certificates": map[string]any{"mode": "cert-manager"}}},
		{"self-signed", map[string]any{"certificates": map[string]any{"mode": "self-managed"}}},
	} {
		t.Run(c.dir, func(t *testing.T) {
			chart := byKey(t, renderChart(t, "stsguard", "stsguard-system", c.values).objs)
			kustomize := byKey(t, render(t, c.dir).objs)
			ns := kustomize["Namespace//stsguard-system"]
			require.NotNil(t, ns, "deploy/%s has the Namespace", c.dir)
			delete(kustomize, "Namespace//stsguard-system")
			assert.Equal(t, "restricted", ns.GetLabels()["pod-security.kubernetes.io/enforce"])
			assert.ElementsMatch(t, slices.Sorted(maps.Keys(chart)), slices.Sorted(maps.Keys(kustomize)), "the same objects")
			for k, want := range chart {
				withoutHelmLabels(want)
				if got, ok := kustomize[k]; ok {
					assert.Equal(t, toMap(t, want), toMap(t, got), "%s: deploy/%s differs from the chart", k, c.dir)
				}
			}
		})
	}
}

// chartValuesFile reads hack/helm/deploy-values/<name>.
func chartValuesFile(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(harness.Root(), "hack", "helm", "deploy-values", name))
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &v))
	return v
}

func byKey(t *testing.T, objs []client.Object) map[string]client.Object {
	t.Helper()
	m := map[string]client.Object{}
	for _, o := range objs {
		k := fmt.Sprintf("%s/%s/%s", o.GetObjectKind().GroupVersionKind().Kind, o.GetNamespace(), o.GetName())
		require.NotContains(t, m, k, "two objects %s", k)
		m[k] = o
	}
	return m
}

// toMap is o as JSON data, so that a difference is shown field by field.
func toMap(t *testing.T, o client.Object) map[string]any {
	t.Helper()
	raw, err := json.Marshal(o)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

// values.schema.json names every rule and mutation of stsguard's catalog,
// and nothing else, so that Helm refuses a policy value with an unknown ID
// as stsguard would (make chart rewrites the lists from `stsguard rules`).
func TestChartSchemaMatchesTheCatalog(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir(), "values.schema.json"))
	require.NoError(t, err)
	var schema struct {
		Defs map[string]json.RawMessage `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(raw, &schema))
	type def struct {
		Enum       []string                   `json:"enum"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	defs := map[string]def{}
	for _, name := range []string{"ruleID", "mutationID", "ruleOrMutationID", "ruleActions", "mutationModes"} {
		var d def
		require.NoError(t, json.Unmarshal(schema.Defs[name], &d), "$defs.%s", name)
		defs[name] = d
	}
	var wantRules, wantMutations []string
	for _, m := range rules.Catalog() {
		if m.Action == engine.Mutate {
			wantMutations = append(wantMutations, m.ID)
		} else {
			wantRules = append(wantRules, m.ID)
		}
	}
	stale := "charts/stsguard/values.schema.json is stale: run `make chart`"
	assert.Equal(t, wantRules, defs["ruleID"].Enum, stale)
	assert.Equal(t, wantMutations, defs["mutationID"].Enum, stale)
	assert.Equal(t, append(wantRules, wantMutations...), defs["ruleOrMutationID"].Enum, stale)
	assert.ElementsMatch(t, wantRules, propertyNames(defs["ruleActions"].Properties), stale)
	assert.ElementsMatch(t, wantMutations, propertyNames(defs["mutationModes"].Properties), stale)
}

func propertyNames(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// The chart's dashboard (charts/stsguard/dashboards/stsguard.json, which
// the Grafana ConfigMap loads with .Files.Get: Helm reads no file outside
// the chart) is a copy of deploy/grafana/stsguard.json, byte for byte.
func TestChartDashboardIsDeploys(t *testing.T) {
	chart, err := os.ReadFile(filepath.Join(chartDir(), "dashboards", "stsguard.json"))
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, json.Unmarshal(chart, &v), "the chart's dashboard is a JSON object")
	deploy, err := os.ReadFile(filepath.Join(harness.Root(), "deploy", "grafana", "stsguard.json"))
	if os.IsNotExist(err) {
		return // no dashboard in deploy/ yet: the chart's copy is all there is
	}
	require.NoError(t, err)
	assert.True(t, bytes.Equal(deploy, chart), "charts/stsguard/dashboards/stsguard.json must be a copy of deploy/grafana/stsguard.json: run `make chart`")
}

// deploy/base, generated from the chart, still lets an overlay replace the
// policy ConfigMap by name with a configMapGenerator (behavior: replace),
// without naming its namespace, as before the chart existed.
func TestChartBasePolicyReplacedByAnOverlay(t *testing.T) {
	dir := t.TempDir()
	base, err := filepath.Rel(dir, filepath.Join(harness.Root(), "deploy", "base"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte("apiVersion: config.stsguard.io/v1alpha1\nkind: Policy\nrules:\n  headless-service-delete: Deny\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(`resources: [`+base+`]
configMapGenerator:
  - name: stsguard-policy
    behavior: replace
    files: [policy.yaml]
generatorOptions:
  disableNameSuffixHash: true
`), 0o600))
	kubectl, err := harness.Kubectl()
	require.NoError(t, err)
	out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	objs, err := harness.Decode(bytes.NewReader(out))
	require.NoError(t, err)
	r := &rendered{objs: objs}
	cm := one[*corev1.ConfigMap](t, r, "stsguard-policy")
	assert.Equal(t, "stsguard-system", cm.Namespace)
	cfg := chartPolicy(t, r, "stsguard")
	assert.EqualValues(t, "Deny", cfg.Actions["headless-service-delete"])
}
