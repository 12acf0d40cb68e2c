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
//  1. /readyz fails (Checker). A deleted pod has left its Service's ready
//     endpoints already (the EndpointSlice controller marks a terminating
//     pod not ready); a failing /readyz also marks it not serving, and
//     takes out of the Service a replica that is stopped without being
//     deleted (the process restarted in place). The cost: where every
//     replica terminates at once, kube-proxy has no serving terminating
//     endpoint to fall back on.
//  2. every response carries "Connection: close" (Handler), so that each
//     keep-alive connection the kube-apiserver holds to the replica is
//     closed by the next request it carries, instead of by the server under
//     a request the apiserver is about to send;
//  3. after the delay, the servers stop: controller-runtime's webhook server
//     closes the connections still idle (those that carried no request
//     during the delay) and waits for the requests in flight
//     (http.Server.Shutdown). The informer cache stops just before; the
//     requests still in flight read it as it was.
//
// Without it, the server stopped the moment SIGTERM arrived: a replica whose
// endpoint had not yet left every apiserver's view refused new connections,
// and each call on such a connection failed (with failurePolicy Ignore, a
// write admitted unjudged; with Fail, a write refused). "Connection: close"
// set by the handler is net/http's way of turning keep-alives off per
// response (the http.Server that would take SetKeepAlivesEnabled(false) is
// controller-runtime's, inside its webhook server, which has no shutdown
// delay of its own); Go's HTTP/2 server answers it with a GOAWAY. Like
// kube-apiserver's --shutdown-delay-duration, /readyz fails at once and
// requests are served through the delay; unlike it, keep-alives end at
// once, since stsguard's only client, the apiserver, reconnects at no cost.
type drain struct {
	draining atomic.Bool
	// exited is closed when the goroutine of context returns.
	exited chan struct{}
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
	d.exited = make(chan struct{})
	go func() {
		defer close(d.exited)
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
		if ctx.Err() == nil {
			log.Info("drain over; stopping the servers (requests in flight finish)", "drained", time.Since(start).Round(time.Millisecond))
		}
		cancel()
	}()
	return ctx, cancel
}
