package server

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
)

// DefaultShutdownDelay is how long stsguard serve keeps answering, with
// keep-alives off, after SIGTERM before it stops its servers (the
// --shutdown-delay-duration flag).
const DefaultShutdownDelay = 5 * time.Second

// drain is the graceful shutdown of the webhook server, in the order a
// replica behind a Service needs it:
//
//  1. /readyz fails (Checker), so that whatever routes to the replica by its
//     readiness (the EndpointSlice controller, a load balancer) stops
//     sending it new connections;
//  2. every response carries "Connection: close" (Handler), so that each
//     keep-alive connection the kube-apiserver holds to the replica is closed
//     after the next request it carries, instead of being cut under a
//     request when the server stops;
//  3. after the delay, the servers stop: controller-runtime's webhook server
//     then closes the connections still idle and waits for the requests in
//     flight (http.Server.Shutdown).
//
// Without it, the server closed every idle keep-alive connection the moment
// SIGTERM arrived, and the apiserver's calls that were about to reuse one
// failed: with failurePolicy Ignore, writes admitted unjudged; with Fail,
// writes refused. "Connection: close" set by the handler is net/http's way of
// turning keep-alives off per response (the http.Server that would take
// SetKeepAlivesEnabled(false) is controller-runtime's, inside its webhook
// server). Kubernetes' own kube-apiserver does the same with
// --shutdown-delay-duration (readyz fails, requests are still served).
type drain struct {
	draining atomic.Bool
}

// errDraining is /readyz's answer while the replica drains.
var errDraining = errors.New("shutting down: draining connections, not taking new ones")

// Checker is a readyz check: nil until the drain starts, then errDraining.
func (d *drain) Checker(*http.Request) error {
	if d.draining.Load() {
		return errDraining
	}
	return nil
}

// Handler wraps next so that, once the drain has started, the response
// carries "Connection: close" and net/http closes the connection after it.
func (d *drain) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// context returns a context for the manager that is cancelled delay after
// parent is (SIGTERM), or as soon as stop is closed (the manager returned on
// its own). The drain starts when parent is cancelled. With delay 0 the
// returned context ends with parent, as without a drain. The second value
// releases the goroutine; call it when the manager has returned.
func (d *drain) context(parent context.Context, delay time.Duration, log logr.Logger) (context.Context, context.CancelFunc) {
	if delay <= 0 {
		return context.WithCancel(parent)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	go func() {
		select {
		case <-parent.Done():
		case <-ctx.Done():
			return
		}
		if ctx.Err() != nil { // released as the parent ended: no drain
			return
		}
		d.draining.Store(true)
		start := time.Now()
		log.Info("draining: readyz fails, responses close their connections; stopping after the shutdown delay", "delay", delay)
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		log.Info("drain over; stopping the servers (requests in flight finish)", "drained", time.Since(start).Round(time.Millisecond))
		cancel()
	}()
	return ctx, cancel
}
