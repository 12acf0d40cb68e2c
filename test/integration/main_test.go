package integration

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/test/harness"
)

var (
	cp   *harness.ControlPlane
	srv  *harness.InProcess // stsguard serve, in-process; srv.SetPolicy changes its policy
	logs *harness.LogBuffer // everything stsguard logged, to check that no secret leaks
)

func TestMain(m *testing.M) {
	harness.Main(m, harness.WithLogs(&logs), harness.WithControlPlane(&cp), harness.WithServer(&srv))
}

// newClient returns an admin client and the recorder of its warnings.
func newClient(t *testing.T) (client.Client, *harness.Warnings) {
	t.Helper()
	c, w, err := harness.NewClient(cp.Config)
	require.NoError(t, err)
	return c, w
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
