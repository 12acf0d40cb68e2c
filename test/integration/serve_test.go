package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stsguard/stsguard/certs"
	"github.com/stsguard/stsguard/server"
	"github.com/stsguard/stsguard/test/harness"
)

// A server started with an empty --cert-dir generates a CA and a serving
// certificate for its --dns-name values and serves TLS 1.2+ without HTTP/2.
func TestServeGeneratesCertificates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	addr, err := harness.FreeAddr()
	require.NoError(t, err)
	probe, err := harness.FreeAddr()
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Options{
			RESTConfig: cp.Config, Host: "127.0.0.1", Port: harness.Port(addr), CertDir: dir,
			DNSNames: []string{"127.0.0.1"}, MetricsBindAddress: "0", HealthProbeBindAddress: probe,
		})
	}()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	require.NoError(t, harness.WaitReady(ctx, probe, 30*time.Second))

	caPEM, err := os.ReadFile(filepath.Join(dir, certs.CAFile))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))

	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}})
	require.NoError(t, err, "the generated certificate must verify against ca.crt")
	state := conn.ConnectionState()
	assert.Equal(t, "http/1.1", state.NegotiatedProtocol, "HTTP/2 is off unless --enable-http2")
	require.NoError(t, conn.Close())

	_, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11})
	assert.Error(t, err, "TLS 1.1 must be refused")
}

// PprofBindAddress (--pprof-bind-address) serves Go's pprof profiles on the
// address given, and only there: not on the metrics or probe addresses.
func TestServePprofWhenAsked(t *testing.T) {
	var addrs [4]string
	for i := range addrs {
		var err error
		addrs[i], err = harness.FreeAddr()
		require.NoError(t, err)
	}
	webhookAddr, probe, metrics, pprof := addrs[0], addrs[1], addrs[2], addrs[3]

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Options{
			RESTConfig: cp.Config, Host: "127.0.0.1", Port: harness.Port(webhookAddr), CertDir: filepath.Join(t.TempDir(), "certs"),
			DNSNames: []string{"127.0.0.1"}, MetricsBindAddress: metrics, HealthProbeBindAddress: probe, PprofBindAddress: pprof,
		})
	}()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	require.NoError(t, harness.WaitReady(ctx, probe, 30*time.Second))

	get := func(url string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second}
		resp, err := c.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	code, body := get("http://" + pprof + "/debug/pprof/cmdline")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "integration.test", "the command line of this test binary")
	for _, other := range []string{metrics, probe} {
		code, _ := get("http://" + other + "/debug/pprof/cmdline")
		assert.Equal(t, http.StatusNotFound, code, "pprof only on its own address, not on %s", other)
	}
}
