package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/certs"
	"github.com/stsguard/stsguard/server"
	"github.com/stsguard/stsguard/test/harness"
	"github.com/stsguard/stsguard/webhook"
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
			ShutdownDelay: ptr.To(time.Duration(0)),
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
			ShutdownDelay: ptr.To(time.Duration(0)),
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

// On shutdown (SIGTERM: the context of server.Run ends), a server with a
// shutdown delay keeps answering through the delay, on the connections its
// clients kept alive and on new ones, with readyz failing and "Connection:
// close" on each response; without the delay a call after SIGTERM finds no
// server, as the apiserver's calls do while the replica's endpoint has not
// yet left its view.
func TestServeDrainsKeptAliveConnectionsOnShutdown(t *testing.T) {
	for _, tc := range []struct {
		name   string
		delay  time.Duration
		served bool // the call on the kept-alive connection after SIGTERM is answered
	}{
		{name: "with a shutdown delay", delay: 3 * time.Second, served: true},
		{name: "without one a call after SIGTERM fails", delay: 0, served: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "certs")
			addr, err := harness.FreeAddr()
			require.NoError(t, err)
			probe, err := harness.FreeAddr()
			require.NoError(t, err)
			ctx, sigterm := context.WithCancel(context.Background())
			defer sigterm()
			done := make(chan error, 1)
			go func() {
				done <- server.Run(ctx, server.Options{
					RESTConfig: cp.Config, Host: "127.0.0.1", Port: harness.Port(addr), CertDir: dir,
					DNSNames: []string{"127.0.0.1"}, MetricsBindAddress: "0", HealthProbeBindAddress: probe,
					ShutdownDelay: &tc.delay,
				})
			}()
			require.NoError(t, harness.WaitReady(context.Background(), probe, 30*time.Second))
			caPEM, err := os.ReadFile(filepath.Join(dir, certs.CAFile))
			require.NoError(t, err)
			pool := x509.NewCertPool()
			require.True(t, pool.AppendCertsFromPEM(caPEM))
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
			url := "https://" + addr + webhook.ValidateSecretPath

			call := func() (*http.Response, bool, error) {
				reused := false
				trace := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
				req, _ := http.NewRequestWithContext(trace, http.MethodPost, url, strings.NewReader("{}"))
				resp, err := c.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				return resp, reused, err
			}
			resp, _, err := call()
			require.NoError(t, err)
			require.False(t, resp.Close, "before shutdown the connection is kept alive")

			sigterm()
			if tc.served {
				require.Eventually(t, func() bool {
					resp, err := http.Get("http://" + probe + "/readyz")
					if err != nil {
						return false
					}
					resp.Body.Close()
					return resp.StatusCode == http.StatusInternalServerError
				}, 10*time.Second, 10*time.Millisecond, "readyz fails while the server drains")
			} else {
				select {
				case err := <-done:
					require.NoError(t, err)
					done <- nil
				case <-time.After(30 * time.Second):
					t.Fatal("the server did not stop")
				}
			}
			resp, reused, err := call()
			if !tc.served {
				require.Error(t, err, "a server that stops at once answers no call after SIGTERM")
				return
			}
			require.NoError(t, err, "the call on the kept-alive connection is answered while the server drains")
			assert.True(t, reused, "the call went over the connection kept alive before SIGTERM")
			assert.True(t, resp.Close, "the answer closes the connection (Connection: close)")
			_, reused, err = call()
			require.NoError(t, err, "a new connection is still served during the shutdown delay")
			assert.False(t, reused)
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Fatal("the server did not stop after its shutdown delay")
			}
		})
	}
}
