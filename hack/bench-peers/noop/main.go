// Command noop is the floor of the comparison bench (make bench-peers): an
// admission webhook that allows every request and does nothing else. It is
// controller-runtime's webhook server with an admission.Webhook on each
// path given, as stsguard serves its webhooks, but without informers, a
// rule engine or a policy: what a review through the apiserver costs the
// architecture itself (TLS, HTTP, decoding the AdmissionReview, the
// response).
//
// Its probe address answers /readyz (200 once the webhook server serves)
// and /reviews (the number of AdmissionReviews answered so far).
//
// Usage: noop -cert-dir DIR -addr 127.0.0.1:PORT -probe-addr 127.0.0.1:PORT -path /mutate-... [-path ...]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

type paths []string

func (p *paths) String() string     { return strings.Join(*p, ",") }
func (p *paths) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	var certDir, addr, probeAddr string
	var ps paths
	flag.StringVar(&certDir, "cert-dir", "", "directory holding tls.crt and tls.key")
	flag.StringVar(&addr, "addr", "127.0.0.1:9443", "host:port the webhooks are served on")
	flag.StringVar(&probeAddr, "probe-addr", "127.0.0.1:8081", "host:port of /readyz (HTTP, 200 once the webhook server serves) and /reviews (the reviews answered)")
	flag.Var(&ps, "path", "a path to answer allowed on (repeatable)")
	flag.Parse()
	if err := run(certDir, addr, probeAddr, ps); err != nil {
		fmt.Fprintln(os.Stderr, "noop:", err)
		os.Exit(1)
	}
}

func run(certDir, addr, probeAddr string, ps paths) error {
	if certDir == "" || len(ps) == 0 {
		return errors.New("-cert-dir and at least one -path are required")
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	srv := webhook.NewServer(webhook.Options{Host: host, Port: port, CertDir: certDir})
	var reviews atomic.Int64
	allow := admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		reviews.Add(1)
		return admission.Allowed("")
	})
	for _, p := range ps {
		srv.Register(p, &admission.Webhook{Handler: allow})
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := srv.StartedChecker()(r); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/reviews", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, reviews.Load())
	})
	probe := &http.Server{Addr: probeAddr, ReadHeaderTimeout: 5 * time.Second, Handler: mux}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = probe.Shutdown(shutdown)
	}()
	probeErr := make(chan error, 1)
	go func() { probeErr <- probe.ListenAndServe() }()
	if err := srv.Start(ctx); err != nil {
		return err
	}
	if err := <-probeErr; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
