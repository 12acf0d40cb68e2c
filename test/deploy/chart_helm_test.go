package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stsguard/stsguard/test/harness"
)

// The chart tests run the helm binary that `make helm` builds into bin/k8s
// (hack/helm/build.sh, the version hack/helm/go.mod pins), or $HELM.

// chartDir is charts/stsguard.
func chartDir() string { return filepath.Join(harness.Root(), "charts", "stsguard") }

// helmBinary returns $HELM, else helm in harness.AssetsDir().
func helmBinary(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	h := filepath.Join(harness.AssetsDir(), "helm")
	_, err := os.Stat(h)
	require.NoError(t, err, "helm missing: run `make helm` (builds it into bin/k8s from hack/helm/go.mod)")
	return h
}

// runHelm runs helm with args (and kubeconfig, when not empty) and returns
// its standard output; the error carries what helm printed on standard
// error.
func runHelm(t *testing.T, kubeconfig string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(helmBinary(t), args...)
	// Helm's own configuration, cache and data of this run alone, so that
	// no user configuration or repository cache takes part.
	home := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	if kubeconfig != "" {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+kubeconfig)
	} else {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+os.DevNull)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// valuesFile writes values as a YAML values file and returns its path
// (not under t.TempDir(): helm splits --values at commas, and test names
// have them).
func valuesFile(t *testing.T, values map[string]any) string {
	t.Helper()
	raw, err := yaml.Marshal(values)
	require.NoError(t, err)
	f, err := os.CreateTemp("", "stsguard-values-*.yaml")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.Remove(f.Name()) })
	_, err = f.Write(raw)
	require.NoError(t, errors.Join(err, f.Close()))
	return f.Name()
}

// chartTemplate is `helm template RELEASE CHART -n NAMESPACE -f values`.
func chartTemplate(t *testing.T, chart, release, namespace string, values map[string]any, extra ...string) ([]byte, error) {
	t.Helper()
	args := append([]string{"template", release, chart, "--namespace", namespace, "--values", valuesFile(t, values)}, extra...)
	return runHelm(t, "", args...)
}

// renderChart renders the chart and decodes every object strictly into
// client-go's and cert-manager's types, and the Prometheus Operator kinds
// into chartScheme's own.
func renderChart(t *testing.T, release, namespace string, values map[string]any) *rendered {
	t.Helper()
	out, err := chartTemplate(t, chartDir(), release, namespace, values)
	require.NoError(t, err)
	objs, err := harness.DecodeWith(chartScheme(t), bytes.NewReader(out))
	require.NoError(t, err, "helm template %s with %v", release, values)
	return &rendered{objs: objs}
}

// chartScheme is deployScheme with ServiceMonitor and PrometheusRule.
// prometheus-operator's Go module is not a dependency of stsguard, so they
// are the fields the chart uses, under the operator's JSON names: decoding
// strictly still refuses any field the chart renders that is not one.
func chartScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := deployScheme(t)
	require.NoError(t, apiextensionsv1.AddToScheme(s))
	gv := schema.GroupVersion{Group: "monitoring.coreos.com", Version: "v1"}
	s.AddKnownTypeWithName(gv.WithKind("ServiceMonitor"), &serviceMonitor{})
	s.AddKnownTypeWithName(gv.WithKind("PrometheusRule"), &prometheusRule{})
	return s
}

// serviceMonitor is monitoring.coreos.com/v1 ServiceMonitor, the fields the
// chart sets.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path,omitempty"`
			Scheme   string `json:"scheme,omitempty"`
			Interval string `json:"interval,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// prometheusRule is monitoring.coreos.com/v1 PrometheusRule; its spec is a
// Prometheus rule file, checked with Prometheus' own rulefmt.
type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              json.RawMessage `json:"spec"`
}

func (s *serviceMonitor) DeepCopyObject() runtime.Object { return deepCopyJSON(s, &serviceMonitor{}) }
func (p *prometheusRule) DeepCopyObject() runtime.Object { return deepCopyJSON(p, &prometheusRule{}) }

func deepCopyJSON[T runtime.Object](from, into T) runtime.Object {
	raw, err := json.Marshal(from)
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		panic(err)
	}
	return into
}

var (
	_ client.Object = &serviceMonitor{}
	_ client.Object = &prometheusRule{}
)

// chartMeta is the part of Chart.yaml the tests read.
type chartMeta struct {
	Version    string `json:"version"`
	AppVersion string `json:"appVersion"`
}

func readChartMeta(t *testing.T, raw []byte) chartMeta {
	t.Helper()
	var m chartMeta
	require.NoError(t, yaml.Unmarshal(raw, &m))
	require.NotEmpty(t, m.Version)
	return m
}

// helmOnlyLabels are the labels the chart puts on every object that
// hack/helm/deploy.sh leaves out of deploy/ (kubectl applies those).
var helmOnlyLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by"}

func withoutHelmLabels(o client.Object) {
	l := o.GetLabels()
	for _, k := range helmOnlyLabels {
		delete(l, k)
	}
	o.SetLabels(l)
}
