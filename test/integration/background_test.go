package integration

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	wgpolicyv1alpha2 "github.com/stsguard/stsguard/apis/wgpolicyk8s/v1alpha2"
	"github.com/stsguard/stsguard/background"
	"github.com/stsguard/stsguard/reports"
	"github.com/stsguard/stsguard/server"
	"github.com/stsguard/stsguard/test/harness"
)

// The background audit of server.Run, in this process (so under the race
// detector with go test -race): a StatefulSet whose Service is missing is
// reported; a policy reload re-judges it (Warn becomes Deny, warn becomes
// fail); the Service created, its finding goes from the report and from
// stsguard_violations; stopped, the audit exports no violations.
func TestBackgroundAuditFollowsChangesAndThePolicy(t *testing.T) {
	_, err := envtest.InstallCRDs(cp.Config, envtest.CRDInstallOptions{Paths: []string{crdPath("wgpolicyk8s.io_policyreports.yaml")}})
	require.NoError(t, err)
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	require.NoError(t, reports.AddToScheme(scheme))
	c, err := client.New(cp.Config, client.Options{Scheme: scheme})
	require.NoError(t, err)
	ctx := context.Background()
	ns := harness.Namespace(t, c)
	require.NoError(t, c.Create(ctx, harness.StatefulSet(ns, "web", "web", "nginx")))

	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(policyFile, []byte(harness.BasePolicy), 0o600))
	addr, err := harness.FreeAddr()
	require.NoError(t, err)
	probe, err := harness.FreeAddr()
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(runCtx, server.Options{
			RESTConfig: cp.Config, Host: "127.0.0.1", Port: harness.Port(addr), CertDir: filepath.Join(t.TempDir(), "certs"),
			DNSNames: []string{"127.0.0.1"}, MetricsBindAddress: "0", HealthProbeBindAddress: probe,
			ShutdownDelay: ptr.To(time.Duration(0)), ConfigFile: policyFile, PolicyPollInterval: time.Second,
			BackgroundAudit: &background.Options{LeaseNamespace: ns, Interval: time.Hour, WriteDelay: 100 * time.Millisecond,
				NamespaceLabel: true}, // the cluster holds other tests' objects: this namespace's series
		})
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			assert.NoError(t, <-done)
		}
	}
	t.Cleanup(stop)
	require.NoError(t, harness.WaitReady(runCtx, probe, 30*time.Second))

	missing := map[string]string{"rule": "headless-service-missing", "resource_namespace": ns}
	result := func() string {
		var r wgpolicyv1alpha2.PolicyReport
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: reports.Name}, &r); err != nil {
			return ""
		}
		for _, res := range r.Results {
			if res.Rule == "headless-service-missing" && res.Subjects[0].Name == "web" {
				return string(res.Result) + " " + res.Properties["action"]
			}
		}
		return ""
	}
	harness.Eventually(t, "the missing Service reported", func() bool { return result() == "warn Warn" }, 30*time.Second)
	assert.Equal(t, 1.0, harness.Value(t, metrics.Registry, "stsguard_violations", map[string]string{"rule": "headless-service-missing", "action": "Warn", "resource_namespace": ns}))
	assert.Equal(t, 1.0, harness.Value(t, metrics.Registry, "stsguard_background_audit_leader", nil))

	// The policy reloaded: everything is judged again under it.
	require.NoError(t, os.WriteFile(policyFile, []byte(harness.BasePolicy+"rules:\n  headless-service-missing: Deny\n"), 0o600))
	harness.Eventually(t, "the finding judged again as Deny", func() bool { return result() == "fail Deny" }, 30*time.Second)

	// The Service created: the StatefulSet is judged again.
	require.NoError(t, c.Create(ctx, harness.Service(ns, "web", "None", map[string]string{"app": "web"})))
	harness.Eventually(t, "the finding gone from the report", func() bool { return result() == "" }, 30*time.Second)
	harness.Eventually(t, "the finding gone from stsguard_violations", func() bool {
		return harness.Value(t, metrics.Registry, "stsguard_violations", missing) == 0
	}, 10*time.Second)

	stop()
	g := prometheus.Gatherer(metrics.Registry)
	assert.Zero(t, harness.Value(t, g, "stsguard_background_audit_leader", nil))
	assert.Zero(t, harness.Value(t, g, "stsguard_violations", nil), "a stopped audit exports no violations")
}
