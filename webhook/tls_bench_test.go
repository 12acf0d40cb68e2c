package webhook_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/stsguard/stsguard/webhook"
)

// BenchmarkServeTLS is BenchmarkValidatingReview over a real loopback
// connection: one client posting the review over a kept-alive TLS
// connection (as the apiserver's webhook client does) to an HTTPS server
// of the handler, over HTTP/1.1 (stsguard serve's default) and HTTP/2
// (--enable-http2, the apiserver's preference when offered). The logger is
// stsguard serve's (controller-runtime's zap, JSON, info level), writing
// to io.Discard. The time and allocations are the client's and the
// server's together: the difference to BenchmarkValidatingReview is what
// HTTP and TLS add to one review on both ends.
func BenchmarkServeTLS(b *testing.B) {
	logf.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	for _, c := range []struct {
		name  string
		http2 bool
	}{
		{"HTTP1.1", false},
		{"HTTP2", true},
	} {
		b.Run(c.name, func(b *testing.B) {
			sts, objs := cassandraFixture(b)
			srv := httptest.NewUnstartedServer(handlers(b, objs...)[webhook.ValidateStatefulSetPath])
			srv.EnableHTTP2 = c.http2
			srv.StartTLS()
			defer srv.Close()
			c := srv.Client()
			body := reviewBody(b, sts)
			post := func() {
				req, err := http.NewRequest(http.MethodPost, srv.URL+webhook.ValidateStatefulSetPath, bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("HTTP %d, %v", resp.StatusCode, err)
				}
				if got := resp.ProtoMajor == 2; got != srv.EnableHTTP2 {
					b.Fatalf("served over %s", resp.Proto)
				}
			}
			post() // the connection and its TLS handshake, outside the timing
			b.ReportAllocs()
			for b.Loop() {
				post()
			}
		})
	}
}
