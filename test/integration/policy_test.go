package integration

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/test/harness"
)

// weakSecret is a Secret weak-password denies by default.
func weakSecret(ns string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "weak-" + rand.String(5)},
		Data: map[string][]byte{"password": []byte("letmein")}}
}

// Each action of weak-password, switched by reloading the policy file.
func TestActionModes(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()

	t.Run("Deny", func(t *testing.T) {
		denied(t, c.Create(ctx, weakSecret(ns)), "Secret", rules.WeakPassword, "data[password]")
	})
	t.Run("Warn", func(t *testing.T) {
		srv.SetPolicy(t, "rules:\n  weak-password: Warn\n")
		w.Take()
		require.NoError(t, c.Create(ctx, weakSecret(ns)))
		assert.Contains(t, joined(w.Take()), "data[password]: Invalid value: the value is a well-known default password")
	})
	t.Run("Audit", func(t *testing.T) {
		srv.SetPolicy(t, "rules:\n  weak-password: Audit\n")
		before := srv.Metric(t, "stsguard_findings_total", map[string]string{"rule": rules.WeakPassword, "action": "Audit", "kind": "Secret", "operation": "CREATE"})
		w.Take()
		s := weakSecret(ns)
		require.NoError(t, c.Create(ctx, s))
		assert.Empty(t, w.Take(), "Audit findings never reach the user")
		assert.Equal(t, before+1, srv.Metric(t, "stsguard_findings_total", map[string]string{"rule": rules.WeakPassword, "action": "Audit", "kind": "Secret", "operation": "CREATE"}))
		logged(t, `"msg":"audit finding"`, `"name":"`+s.Name+`"`, `"rule":"weak-password","field":"data[password]"`)
		assert.False(t, strings.Contains(logs.String(), "letmein"), "the value is never logged")
	})
	t.Run("Off", func(t *testing.T) {
		srv.SetPolicy(t, "rules:\n  weak-password: \"Off\"\n")
		w.Take()
		require.NoError(t, c.Create(ctx, weakSecret(ns)))
		assert.Empty(t, w.Take())
	})
}

func TestExemptionAnnotation(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()

	without := weakSecret(ns)
	without.Annotations = map[string]string{engine.ExemptAnnotation: rules.WeakPassword}
	w.Take()
	denied(t, c.Create(ctx, without), "Secret", rules.WeakPassword, "data[password]")
	assert.Contains(t, joined(w.Take()), "metadata.annotations[stsguard.io/exempt-reason]: Required value: stsguard.io/exempt is ignored, so rules weak-password still apply: set stsguard.io/exempt-reason")

	before := srv.Metric(t, "stsguard_exemptions_total", map[string]string{"rule": rules.WeakPassword})
	with := weakSecret(ns)
	with.Annotations = map[string]string{engine.ExemptAnnotation: rules.WeakPassword, engine.ExemptReasonAnnotation: "OPS-42: fixture for a vendor test suite"}
	w.Take()
	require.NoError(t, c.Create(ctx, with))
	assert.Empty(t, w.Take())
	assert.Equal(t, before+1, srv.Metric(t, "stsguard_exemptions_total", map[string]string{"rule": rules.WeakPassword}))
	logged(t, `"msg":"exemption used"`, `"name":"`+with.Name+`"`, `"rule":"weak-password","by":"annotation","reason":"OPS-42: fixture for a vendor test suite"`)
}

func TestNamespaceExemption(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	sandbox := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "sandbox-" + rand.String(5), Labels: map[string]string{"stsguard.io/tier": "sandbox"}}}
	require.NoError(t, c.Create(ctx, sandbox))
	other := harness.Namespace(t, c)
	srv.SetPolicy(t, "exemptions:\n- namespaceSelector:\n    matchLabels:\n      stsguard.io/tier: sandbox\n  rules: [weak-password]\n")

	harness.Eventually(t, "stsguard to see the namespace's labels", func() bool {
		return c.Create(ctx, weakSecret(sandbox.Name), client.DryRunAll) == nil
	})
	require.NoError(t, c.Create(ctx, weakSecret(sandbox.Name)))
	denied(t, c.Create(ctx, weakSecret(other)), "Secret", rules.WeakPassword, "data[password]")
}

// A policy file that becomes invalid keeps the policy in force, and says so
// in the log and the reload error counter.
func TestInvalidPolicyIsKeptOut(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	srv.SetPolicy(t, "rules:\n  weak-password: Warn\n")

	errs := srv.Metric(t, "stsguard_policy_reload_errors_total", nil)
	// A failed content is reported once; a comment unique to this run makes
	// it new when the test runs again in the same process (-count).
	srv.WritePolicy(t, harness.BasePolicy+"# "+ns+"\nrules:\n  weak-password: Warn\n  no-such-rule: Deny\n")
	harness.Eventually(t, "the reload error", func() bool { return srv.Metric(t, "stsguard_policy_reload_errors_total", nil) > errs })
	logged(t, "invalid policy file; the previous policy stays in force", `rules[no-such-rule]: Not found: \"no-such-rule\"`)
	require.NoError(t, c.Create(ctx, weakSecret(ns)), "the previous policy (Warn) is still in force")
}

// The metrics stsguard exports, scraped from /metrics.
func TestMetricsAreExposed(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	before := srv.Metric(t, "stsguard_mutations_total", map[string]string{"rule": rules.TerminationGracePeriod})
	require.NoError(t, c.Create(ctx, harness.StatefulSet(ns, "cassandra", "", "cassandra:4.0")))
	assert.Equal(t, before+1, srv.Metric(t, "stsguard_mutations_total", map[string]string{"rule": rules.TerminationGracePeriod}))
	assert.Positive(t, srv.Metric(t, "stsguard_findings_total", map[string]string{"rule": rules.ServiceNameEmpty, "action": "Warn", "kind": "StatefulSet", "operation": "CREATE"}))
	assert.Positive(t, srv.Metric(t, "stsguard_evaluation_duration_seconds", map[string]string{"kind": "StatefulSet", "operation": "CREATE", "webhook": "validating"}))
	assert.Positive(t, srv.Metric(t, "stsguard_evaluation_duration_seconds", map[string]string{"kind": "StatefulSet", "operation": "CREATE", "webhook": "mutating"}))
	for _, tc := range []struct {
		name string
		// mayBeAbsent: a vector that has no series before its first use
		// (exemptions are counted in TestExemptionAnnotation).
		mayBeAbsent bool
	}{
		{"stsguard_exemptions_total", true},
		{"stsguard_policy_reload_errors_total", false},
		{"stsguard_policy_reloads_total", false},
		{"controller_runtime_webhook_requests_total", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := testutil.GatherAndCount(srv.Metrics(), tc.name)
			require.NoError(t, err)
			assert.True(t, n > 0 || tc.mayBeAbsent, "%s is exposed", tc.name)
		})
	}

	// What stsguard serves passes promlint (as `promtool check metrics`).
	families, err := srv.Metrics().Gather()
	require.NoError(t, err)
	var ours []string
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "stsguard_") {
			ours = append(ours, f.GetName())
		}
	}
	assert.GreaterOrEqual(t, len(ours), 5, "stsguard's metrics served: %v", ours)
	problems, err := testutil.GatherAndLint(srv.Metrics(), ours...)
	require.NoError(t, err)
	assert.Empty(t, problems)
}
