package apiwarnings

import (
	"context"
	"sync"

	"k8s.io/client-go/rest"
)

// Recorder keeps the warnings a client receives, in order, and passes each
// on to Next when it is set. It is safe for concurrent use.
type Recorder struct {
	// Next also handles every warning, for example
	// rest.NewWarningWriter(os.Stderr, ...) to print it as kubectl does.
	Next rest.WarningHandler
	mu   sync.Mutex
	msgs []string
}

var _ rest.WarningHandlerWithContext = (*Recorder)(nil)

// HandleWarningHeaderWithContext records one warning.
func (r *Recorder) HandleWarningHeaderWithContext(ctx context.Context, code int, agent, text string) {
	r.mu.Lock()
	r.msgs = append(r.msgs, text)
	r.mu.Unlock()
	if r.Next != nil {
		r.Next.HandleWarningHeader(code, agent, text)
	}
}

// Take returns the warnings recorded since the last Take, in order.
func (r *Recorder) Take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.msgs
	r.msgs = nil
	return out
}
