package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/server"
)

// BasePolicy is the policy in force when no test set another: the defaults.
const BasePolicy = "apiVersion: config.stsguard.io/v1alpha1\nkind: Policy\n"

// InProcess is `stsguard serve` (server.Run) running in the test process for
// a control plane, watching a policy file that tests rewrite with SetPolicy.
type InProcess struct {
	ProbeAddr, MetricsAddr string
	// PolicyFile is the policy stsguard watches.
	PolicyFile string
	cancel     context.CancelFunc
	exited     chan struct{} // closed when server.Run has returned
	err        error         // what server.Run returned; set before exited is closed
	dir        string
}

// ServeInProcess starts server.Run for cp with BasePolicy in force and
// returns once /readyz answers 200, or an error after 60 s. Stop it before
// stopping cp.
func ServeInProcess(cp *ControlPlane) (*InProcess, error) {
	s := &InProcess{exited: make(chan struct{})}
	var err error
	if s.ProbeAddr, err = FreeAddr(); err != nil {
		return nil, err
	}
	if s.MetricsAddr, err = FreeAddr(); err != nil {
		return nil, err
	}
	if s.dir, err = os.MkdirTemp("", "stsguard-policy-"); err != nil {
		return nil, err
	}
	s.PolicyFile = filepath.Join(s.dir, "policy.yaml")
	if err := os.WriteFile(s.PolicyFile, []byte(BasePolicy), 0o600); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.exited)
		s.err = server.Run(ctx, server.Options{
			RESTConfig:             cp.Config,
			Host:                   cp.Webhook.LocalServingHost,
			Port:                   cp.Webhook.LocalServingPort,
			CertDir:                cp.Webhook.LocalServingCertDir,
			MetricsBindAddress:     s.MetricsAddr,
			HealthProbeBindAddress: s.ProbeAddr,
			ConfigFile:             s.PolicyFile,
			PolicyPollInterval:     time.Hour, // file system events must do it
			// Stopped only with its control plane: no call to drain.
			ShutdownDelay: ptr.To(time.Duration(0)),
		})
	}()
	// Stop waiting as soon as server.Run returns (a port taken, a bad
	// certificate): it will never be ready.
	ready, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	go func() {
		select {
		case <-s.exited:
			stopWaiting()
		case <-ready.Done():
		}
	}()
	if err := WaitReady(ready, s.ProbeAddr, 60*time.Second); err != nil {
		return nil, fmt.Errorf("stsguard serve is not ready: %w (it returned: %v)", err, s.Stop())
	}
	return s, nil
}

// Stop stops the server and returns the error it exited with.
func (s *InProcess) Stop() error {
	s.cancel()
	<-s.exited
	err := s.err
	os.RemoveAll(s.dir)
	return err
}

// SetPolicy puts BasePolicy plus body in force (through the file and
// stsguard's reload, not a restart) and restores BasePolicy when the test
// ends.
func (s *InProcess) SetPolicy(t *testing.T, body string) {
	t.Helper()
	s.writePolicy(t, BasePolicy+fmt.Sprintf("# %s\n", t.Name())+body)
	t.Cleanup(func() { s.ResetPolicy(t) })
}

// ResetPolicy puts BasePolicy back in force, unless it is already.
func (s *InProcess) ResetPolicy(t *testing.T) {
	t.Helper()
	if have, err := os.ReadFile(s.PolicyFile); err == nil && string(have) == BasePolicy {
		return
	}
	s.writePolicy(t, BasePolicy)
}

// writePolicy is WritePolicy that waits for the reload.
func (s *InProcess) writePolicy(t *testing.T, body string) {
	t.Helper()
	reloads := s.Metric(t, "stsguard_policy_reloads_total", nil)
	s.WritePolicy(t, body)
	Eventually(t, "the policy reload", func() bool { return s.Metric(t, "stsguard_policy_reloads_total", nil) > reloads })
}

// WritePolicy replaces the policy file with body as the kubelet swaps a
// ConfigMap (write a new file, rename it over the old one), and returns
// without waiting for a reload: for a body stsguard must refuse. Call
// SetPolicy first, so that its cleanup puts BasePolicy back.
func (s *InProcess) WritePolicy(t *testing.T, body string) {
	t.Helper()
	tmp := s.PolicyFile + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(body), 0o600))
	require.NoError(t, os.Rename(tmp, s.PolicyFile))
}

// Metrics returns stsguard's /metrics, scraped over HTTP on every Gather:
// read it with Metric or client_golang's testutil.
func (s *InProcess) Metrics() prometheus.Gatherer {
	return MetricsEndpoint("http://" + s.MetricsAddr + "/metrics")
}

// Metric returns Value(name, want) of stsguard's /metrics: the sum of the
// counters (or of the histograms' sample counts) named name whose labels
// include want; 0 when there is none.
func (s *InProcess) Metric(t testing.TB, name string, want map[string]string) float64 {
	t.Helper()
	return Value(t, s.Metrics(), name, want)
}
