package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// get sends one request through c and reports whether it went over a reused
// connection and whether the response asked to close it.
func get(t *testing.T, c *http.Client, url string) (reused, closed bool) {
	t.Helper()
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return reused, resp.Close
}

func TestDrainClosesKeptAliveConnectionsAndFailsReadiness(t *testing.T) {
	var d drain
	srv := httptest.NewServer(d.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})))
	defer srv.Close()
	c := &http.Client{Transport: &http.Transport{}}

	parent, sigterm := context.WithCancel(context.Background())
	defer sigterm()
	// A delay no test waits for: the drain is ended by release below.
	ctx, release := d.context(parent, time.Hour, logr.Discard())

	_, closed := get(t, c, srv.URL)
	assert.False(t, closed, "before the drain, responses keep their connection")
	reused, _ := get(t, c, srv.URL)
	assert.True(t, reused, "before the drain, the client reuses its connection")
	assert.NoError(t, d.Checker(nil))

	sigterm()
	require.Eventually(t, d.draining.Load, 10*time.Second, 10*time.Millisecond, "the drain starts when the parent context ends")
	assert.ErrorIs(t, d.Checker(nil), errDraining, "readyz fails while draining")
	assert.NoError(t, ctx.Err(), "the servers keep running while draining")

	reused, closed = get(t, c, srv.URL)
	assert.True(t, reused, "the kept-alive connection still carries a request")
	assert.True(t, closed, "the response of a draining server closes its connection")
	reused, closed = get(t, c, srv.URL)
	assert.False(t, reused, "the next request needs a new connection")
	assert.True(t, closed)

	release()
	assert.ErrorIs(t, ctx.Err(), context.Canceled)
}

func TestDrainContext(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
		// draining: the drain starts (readyz fails) when the parent ends.
		draining bool
	}{
		{name: "no delay: the manager stops with the parent, no drain", delay: 0, draining: false},
		{name: "a delay: the manager stops after it", delay: 50 * time.Millisecond, draining: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d drain
			parent, sigterm := context.WithCancel(context.Background())
			ctx, release := d.context(parent, tc.delay, logr.Discard())
			defer release()
			sigterm()
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Fatalf("the manager's context did not end %s after the parent's", tc.delay)
			}
			assert.Equal(t, tc.draining, d.draining.Load())
		})
	}
}

// A manager that returned on its own releases the drain as SIGTERM comes:
// whichever the drain's goroutine sees first, no drain starts.
func TestDrainReleasedAsSIGTERMComes(t *testing.T) {
	for range 200 {
		var d drain
		parent, sigterm := context.WithCancel(context.Background())
		_, release := d.context(parent, time.Hour, logr.Discard())
		release() // the manager returned on its own
		sigterm()
		<-d.exited
		assert.False(t, d.draining.Load(), "a released drain never starts")
	}
}
