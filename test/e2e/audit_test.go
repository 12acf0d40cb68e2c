package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/stsguard/stsguard/test/harness"
)

// decision is what admission did with one object: the fields of
// `stsguard audit -o json`'s objects[] that a kubectl user can see.
type decision struct {
	Kind      string   `json:"kind"`
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Denied    bool     `json:"denied"`
	Deny      []string `json:"deny"`
	Warn      []string `json:"warn"`
	Mutations []string `json:"mutations"`
}

// fromKubectl reads a decision off what `kubectl apply` printed for one
// object: a non-zero exit is a denial whose [rule: X] tags are the Deny
// rules; "Warning:" lines are warnings, or mutations when stsguard says it
// changed something.
func fromKubectl(t *testing.T, res harness.KubectlResult) (denied bool, deny, warn, mutations []string) {
	t.Helper()
	var denials, warnings, changes []string
	for _, line := range strings.Split(res.Stderr, "\n") {
		switch w, ok := strings.CutPrefix(line, "Warning: "); {
		case ok && strings.Contains(w, "changed by stsguard"):
			changes = append(changes, w)
		case ok:
			warnings = append(warnings, w)
		default:
			denials = append(denials, line)
		}
	}
	if res.ExitCode != 0 {
		require.Regexp(t, `is invalid: .*\[rule: `, res.Stderr, "kubectl failed for another reason than a denial")
	}
	return res.ExitCode != 0, harness.RuleIDs(denials...), harness.RuleIDs(warnings...), harness.RuleIDs(changes...)
}

// stsguard audit replays admission in the order kubectl applies objects;
// for every example, and for a Service before and after its StatefulSet,
// its decisions (denied, the Deny and Warn rules, the mutations) are the
// ones the live webhooks give `kubectl apply` of the same objects, one by
// one in that order, on the real cluster.
//
// The fixtures of test/testdata/audit are not here: they use apps/v1beta1
// and v1beta2, which the apiserver no longer serves, or are broken on
// purpose.
func TestAuditAgreesWithTheWebhooks(t *testing.T) {
	bin := harness.BuildStsguard(t)
	var cases []string
	dirs, err := filepath.Glob(filepath.Join(harness.Root(), "examples", "*"))
	require.NoError(t, err)
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			cases = append(cases, d)
		}
	}
	orders, err := filepath.Glob(filepath.Join(harness.Root(), "test", "e2e", "testdata", "order", "*.yaml"))
	require.NoError(t, err)
	cases = append(cases, orders...)
	require.NotEmpty(t, cases)

	for _, path := range cases {
		rel, _ := filepath.Rel(harness.Root(), path)
		t.Run(rel, func(t *testing.T) {
			c, _ := newClient(t)
			ns := namespace(t, c)

			// What the webhooks say, object by object in kubectl's order.
			list := kubectl(t, "", "-n", ns, "create", "--dry-run=client", "-o", "json", "-f", path)
			if strings.Contains(list.Stderr, "You must pass '--namespace=") { // every object names its namespace
				list = mustKubectl(t, "", "create", "--dry-run=client", "-o", "json", "-f", path)
			}
			require.Equal(t, 0, list.ExitCode, list.Stderr)
			var items []unstructured.Unstructured
			dec := json.NewDecoder(strings.NewReader(list.Stdout))
			for dec.More() {
				item := unstructured.Unstructured{}
				require.NoError(t, dec.Decode(&item.Object))
				items = append(items, item)
			}
			// The namespace audit reads live objects from: the test's, or the
			// one every object names (examples/cassandra names its own).
			auditNS := ns
			if len(items) > 0 && items[0].GetNamespace() != "" && items[0].GetNamespace() != ns {
				auditNS = items[0].GetNamespace()
			}
			// What audit says, from the files and the cluster as it is.
			out, err := exec.Command(bin, "audit", "-f", path, "--cluster", "-n", auditNS, "-o", "json", "--kubeconfig", cl.Kubeconfig).Output()
			var exit *exec.ExitError
			if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
				require.NoError(t, err, "stsguard audit: %s", out)
			}
			var report struct {
				Objects []decision `json:"objects"`
			}
			require.NoError(t, json.Unmarshal(out, &report))

			var live []decision
			for _, item := range items {
				if k := item.GetKind(); k != "StatefulSet" && k != "Service" && k != "Secret" {
					mustKubectl(t, jsonOf(t, item.Object), "-n", ns, "apply", "-f", "-")
					continue
				}
				if item.GetNamespace() != "" && item.GetNamespace() != ns {
					_ = kubectl(t, "", "create", "namespace", item.GetNamespace())
				}
				got := decision{Kind: item.GetKind(), Namespace: item.GetNamespace(), Name: item.GetName()}
				if got.Namespace == "" {
					got.Namespace = ns
				}
				got.Denied, got.Deny, got.Warn, got.Mutations = fromKubectl(t, kubectl(t, jsonOf(t, item.Object), "-n", got.Namespace, "apply", "-f", "-"))
				live = append(live, got)
			}
			want := make([]decision, len(report.Objects))
			for i, d := range report.Objects {
				want[i] = decision{Kind: d.Kind, Namespace: d.Namespace, Name: d.Name, Denied: d.Denied,
					Deny: nilIfEmpty(d.Deny), Warn: nilIfEmpty(d.Warn), Mutations: nilIfEmpty(d.Mutations)}
			}
			assert.Equal(t, want, live, "stsguard audit (expected) against kubectl apply through the webhooks (actual)")
		})
	}
}

func jsonOf(t *testing.T, obj map[string]any) string {
	t.Helper()
	b, err := json.Marshal(obj)
	require.NoError(t, err)
	return string(b)
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// `stsguard audit -f FILE --cluster` without -n, as `kubectl apply -f FILE`:
// the file's objects go to the kubeconfig context's namespace, and are
// judged against that namespace's live objects.
func TestAuditFilesTakeTheContextNamespace(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	require.NoError(t, c.Create(ctx(), harness.Service(ns, "web", "None", map[string]string{"app": "web"})))
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	raw, err := os.ReadFile(cl.Kubeconfig)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(kubeconfig, raw, 0o600))
	res, err := harness.RunKubectl(kubeconfig, "", "config", "set-context", "--current", "--namespace="+ns)
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	sts := filepath.Join(t.TempDir(), "web.yaml")
	require.NoError(t, os.WriteFile(sts, []byte(toYAML(t, harness.StatefulSet("", "web", "web", "nginx"))), 0o600))

	out, err := exec.Command(harness.BuildStsguard(t), "audit", "-f", sts, "--cluster", "-o", "json", "--kubeconfig", kubeconfig).Output()
	require.NoError(t, err, "%s", out)
	var report struct {
		Objects []decision `json:"objects"`
	}
	require.NoError(t, json.Unmarshal(out, &report))
	require.Len(t, report.Objects, 1)
	assert.Equal(t, ns, report.Objects[0].Namespace)
	assert.NotContains(t, report.Objects[0].Warn, "headless-service-missing", "the context namespace's Service was found")
}
