package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"
)

// eventually polls cond every 50ms until it holds, failing the test after
// 10s. stsguard reads StatefulSets, StorageClasses and Namespaces from its
// informer cache, which sees an object a moment after the API has it; tests
// wait with a dry run of the request under test before the real one.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	require.NoError(t, err, "waiting for %s", what)
}

// scrape returns stsguard's /metrics.
func scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return families
}

// metric returns the value of the counter (or the sample count of the
// histogram) name whose labels include want; 0 when there is none.
func metric(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	f, ok := scrape(t)[name]
	if !ok {
		return 0
	}
	var sum float64
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetHistogram() != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// writePolicy replaces the policy file as the kubelet swaps a ConfigMap:
// write a new file, rename it over the old one.
func writePolicy(t *testing.T, body string) {
	t.Helper()
	tmp := policyFile + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(body), 0o600))
	require.NoError(t, os.Rename(tmp, policyFile))
}

// setPolicy puts basePolicy plus body in force (through the file and
// stsguard's reload, not a restart) and restores basePolicy when the test
// ends.
func setPolicy(t *testing.T, body string) {
	t.Helper()
	reloads := metric(t, "stsguard_policy_reloads_total", nil)
	writePolicy(t, basePolicy+fmt.Sprintf("# %s\n", t.Name())+body)
	eventually(t, "the policy reload", func() bool { return metric(t, "stsguard_policy_reloads_total", nil) > reloads })
	t.Cleanup(func() { resetPolicy(t) })
}

// resetPolicy puts basePolicy back in force, unless it is already.
func resetPolicy(t *testing.T) {
	t.Helper()
	if have, err := os.ReadFile(policyFile); err == nil && string(have) == basePolicy {
		return
	}
	reloads := metric(t, "stsguard_policy_reloads_total", nil)
	writePolicy(t, basePolicy)
	eventually(t, "the base policy back", func() bool { return metric(t, "stsguard_policy_reloads_total", nil) > reloads })
}

func joined(ws []string) string { return strings.Join(ws, "\n") }

// logged asserts that one line stsguard logged contains every part.
func logged(t *testing.T, parts ...string) {
	t.Helper()
lines:
	for _, line := range strings.Split(logs.String(), "\n") {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue lines
			}
		}
		return
	}
	t.Errorf("no log line contains all of %q", parts)
}
