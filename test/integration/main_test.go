// Package integration tests stsguard end to end: a real kube-apiserver and
// etcd (envtest), the webhook configurations rendered from deploy/base, and
// `stsguard serve` running in-process, exercised through real clients.
package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/server"
	"github.com/stsguard/stsguard/test/harness"
)

var (
	cp          *harness.ControlPlane
	probeAddr   string
	metricsAddr string
	logs        *harness.LogBuffer // everything stsguard logged, to check that no secret leaks
	policyFile  string             // the policy stsguard serve watches; see setPolicy
)

// basePolicy is the policy in force when no test set another: the defaults.
const basePolicy = "apiVersion: config.stsguard.io/v1alpha1\nkind: Policy\n"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	logs = harness.CaptureLogs()

	var err error
	if cp, err = harness.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping control plane:", err)
		}
	}()
	if probeAddr, err = harness.FreeAddr(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if metricsAddr, err = harness.FreeAddr(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	dir, err := os.MkdirTemp("", "stsguard-policy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	policyFile = filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(basePolicy), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Options{
			RESTConfig:             cp.Config,
			Host:                   cp.Webhook.LocalServingHost,
			Port:                   cp.Webhook.LocalServingPort,
			CertDir:                cp.Webhook.LocalServingCertDir,
			MetricsBindAddress:     metricsAddr,
			HealthProbeBindAddress: probeAddr,
			ConfigFile:             policyFile,
			PolicyPollInterval:     time.Hour, // file system events must do it
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "stsguard serve:", err)
		}
	}()
	if err := harness.WaitReady(ctx, probeAddr, 60*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// newClient returns an admin client and the recorder of its warnings.
func newClient(t *testing.T) (client.Client, *harness.Warnings) {
	t.Helper()
	c, w, err := harness.NewClient(cp.Config)
	require.NoError(t, err)
	return c, w
}

// namespace creates a fresh namespace for one test (envtest runs no
// namespace controller, so namespaces are never reused).
func namespace(t *testing.T, c client.Client) string {
	t.Helper()
	name := "t-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.Trim(name, "-_") + "-" + rand.String(5)
	name = strings.ReplaceAll(name, "_", "-")
	require.NoError(t, c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	return name
}

// webhookClient returns an HTTPS client that trusts the serving CA.
func webhookClient(t *testing.T) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(cp.Webhook.LocalServingCAData))
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

func webhookURL(path string) string {
	return fmt.Sprintf("https://%s:%d%s", cp.Webhook.LocalServingHost, cp.Webhook.LocalServingPort, path)
}
