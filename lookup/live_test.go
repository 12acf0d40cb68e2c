package lookup_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/stsguard/stsguard/lookup"
)

// countingReader is the live client: it records every GET, answers from
// objects, or fails with err, or blocks until the read's context ends.
type countingReader struct {
	client.Reader
	err   error
	block bool

	mu   sync.Mutex
	gets []string
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.mu.Lock()
	c.gets = append(c.gets, key.String())
	c.mu.Unlock()
	switch {
	case c.block:
		<-ctx.Done()
		return ctx.Err()
	case c.err != nil:
		return c.err
	}
	return c.Reader.Get(ctx, key, obj, opts...)
}

func (c *countingReader) Gets() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.gets...)
}

// step is one lookup of a request and whether it should find the object.
type step struct {
	kind  string // Service or Secret
	name  string // in namespace "a"
	found bool
}

// request is one admission request's lookups, made after the clock moved
// on by after.
type request struct {
	after time.Duration
	steps []step
}

func svc(name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: meta("a", name)}
}

func secret(name string) *corev1.Secret { return &corev1.Secret{ObjectMeta: meta("a", name)} }

func TestLiveReads(t *testing.T) {
	boom := errors.New("connection refused")
	for _, tc := range []struct {
		name        string
		cache, live []client.Object
		liveErr     error
		opts        lookup.LiveOptions
		requests    []request
		wantGets    []string
		wantAnswers map[string]float64 // kind/answer: count
	}{{
		name:  "a cache hit makes no live read",
		cache: []client.Object{svc("web"), secret("db")},
		requests: []request{{steps: []step{
			{"Service", "web", true}, {"Secret", "db", true},
		}}},
	}, {
		name: "a miss the API has is read once per request and answered the same every time",
		live: []client.Object{svc("fresh")},
		requests: []request{{steps: []step{
			{"Service", "fresh", true}, {"Service", "fresh", true}, {"Service", "fresh", true},
		}}},
		wantGets:    []string{"a/fresh"},
		wantAnswers: map[string]float64{"Service/live-found": 1},
	}, {
		name: "a found object is not cached across requests: the informer will have it",
		live: []client.Object{secret("fresh")},
		requests: []request{
			{steps: []step{{"Secret", "fresh", true}}},
			{steps: []step{{"Secret", "fresh", true}}},
		},
		wantGets:    []string{"a/fresh", "a/fresh"},
		wantAnswers: map[string]float64{"Secret/live-found": 2},
	}, {
		name: "a NotFound from the API answers for NegativeTTL without a read, then is asked again",
		opts: lookup.LiveOptions{NegativeTTL: 2 * time.Second},
		requests: []request{
			{steps: []step{{"Service", "gone", false}, {"Service", "gone", false}, {"Service", "gone", false}}},
			{after: time.Second, steps: []step{{"Service", "gone", false}}},
			{after: 1999 * time.Millisecond, steps: []step{{"Service", "gone", false}}},
			{after: 2 * time.Millisecond, steps: []step{{"Service", "gone", false}}},
		},
		wantGets:    []string{"a/gone", "a/gone"},
		wantAnswers: map[string]float64{"Service/live-not-found": 2, "Service/negative-cache": 2},
	}, {
		name: "the negative cache is keyed by kind: a missing Service says nothing about a Secret of that name",
		live: []client.Object{secret("web")},
		requests: []request{
			{steps: []step{{"Service", "web", false}}},
			{steps: []step{{"Secret", "web", true}}},
		},
		wantGets:    []string{"a/web", "a/web"},
		wantAnswers: map[string]float64{"Service/live-not-found": 1, "Secret/live-found": 1},
	}, {
		name: "at most one live read of a kind per request: the second miss keeps the cache's answer",
		live: []client.Object{secret("fresh"), svc("fresh")},
		requests: []request{
			{steps: []step{{"Secret", "gone", false}, {"Secret", "fresh", false}, {"Secret", "fresh", false}}},
			{steps: []step{{"Service", "gone", false}, {"Service", "fresh", false}}},
			{steps: []step{{"Secret", "fresh", true}, {"Service", "fresh", true}}},
		},
		wantGets: []string{"a/gone", "a/gone", "a/fresh", "a/fresh"},
		wantAnswers: map[string]float64{
			"Secret/live-not-found": 1, "Secret/request-budget": 1, "Secret/live-found": 1,
			"Service/live-not-found": 1, "Service/request-budget": 1, "Service/live-found": 1,
		},
	}, {
		name: "one Service and one Secret per request: the Service created a moment ago and the Secret stsguard just wrote",
		live: []client.Object{secret("db-credentials"), svc("db")},
		requests: []request{
			{steps: []step{{"Service", "db", true}, {"Secret", "db-credentials", true}}},
		},
		wantGets:    []string{"a/db", "a/db-credentials"},
		wantAnswers: map[string]float64{"Service/live-found": 1, "Secret/live-found": 1},
	}, {
		name: "a negative-cache answer does not spend the request's read",
		requests: []request{
			{steps: []step{{"Service", "gone", false}}},
			{steps: []step{{"Service", "gone", false}, {"Service", "other", false}}},
		},
		wantGets:    []string{"a/gone", "a/other"},
		wantAnswers: map[string]float64{"Service/live-not-found": 2, "Service/negative-cache": 1},
	}, {
		name: "an empty token bucket skips the read, never waits; it refills at QPS",
		opts: lookup.LiveOptions{QPS: 1, Burst: 2},
		requests: []request{
			{steps: []step{{"Service", "a", false}}},
			{steps: []step{{"Service", "b", false}}},
			{steps: []step{{"Service", "c", false}, {"Service", "c", false}}},
			{after: time.Second, steps: []step{{"Service", "c", false}}},
		},
		wantGets:    []string{"a/a", "a/b", "a/c"},
		wantAnswers: map[string]float64{"Service/live-not-found": 3, "Service/rate-limited": 1},
	}, {
		name:    "a failed live read leaves the cache's NotFound and is not remembered across requests",
		liveErr: boom,
		requests: []request{
			{steps: []step{{"Secret", "db", false}, {"Secret", "db", false}}},
			{steps: []step{{"Secret", "db", false}}},
		},
		wantGets:    []string{"a/db", "a/db"},
		wantAnswers: map[string]float64{"Secret/live-error": 2},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(time.Unix(1_700_000_000, 0))
			reg := prometheus.NewRegistry()
			o := tc.opts
			o.Clock, o.Registerer = clk, reg
			apiClient := &countingReader{Reader: fake.NewClientBuilder().WithObjects(tc.live...).Build(), err: tc.liveErr}
			live, err := lookup.NewLive(apiClient, o)
			require.NoError(t, err)
			cache := fake.NewClientBuilder().WithObjects(tc.cache...).Build()

			for i, req := range tc.requests {
				clk.SetTime(clk.Now().Add(req.after))
				r := lookup.Reader{Cache: cache, Live: live.ForRequest()}
				for _, s := range req.steps {
					var got metav1.Object
					var err error
					if s.kind == "Service" {
						got, err = r.Service(context.Background(), "a", s.name)
					} else {
						got, err = r.Secret(context.Background(), "a", s.name)
					}
					if s.found {
						require.NoError(t, err, "request %d: %s %s", i, s.kind, s.name)
						assert.Equal(t, s.name, got.GetName())
					} else {
						assert.True(t, apierrors.IsNotFound(err), "request %d: %s %s: want NotFound, got %v", i, s.kind, s.name, err)
					}
				}
			}
			assert.Equal(t, tc.wantGets, apiClient.Gets(), "live GETs")
			assert.Equal(t, tc.wantAnswers, answers(t, reg))
		})
	}
}

// answers returns stsguard_lookup_cache_misses_total by kind/answer.
func answers(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	var out map[string]float64
	for _, f := range families {
		require.Equal(t, "stsguard_lookup_cache_misses_total", f.GetName())
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if out == nil {
				out = map[string]float64{}
			}
			out[labels["kind"]+"/"+labels["answer"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

// The mutating webhook finds the credentials Secret missing, writes it
// through ForgetOnWrite, and the validating webhook then reads it live
// instead of believing the negative entry.
func TestForgetOnWrite(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		write func(c client.Client) error
		obj   client.Object
	}{
		{"create", func(c client.Client) error { return c.Create(ctx, secret("db")) }, secret("db")},
		{"create that finds it exists", func(c client.Client) error { return c.Create(ctx, secret("db")) }, nil},
		{"update", func(c client.Client) error { return c.Update(ctx, secret("db")) }, nil},
		{"patch", func(c client.Client) error {
			return c.Patch(ctx, secret("db"), client.RawPatch(types.MergePatchType, []byte(`{"data":{}}`)))
		}, nil},
		{"create of a Service", func(c client.Client) error { return c.Create(ctx, svc("db")) }, svc("db")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := fake.NewClientBuilder().Build()
			apiClient := &countingReader{Reader: api}
			live, err := lookup.NewLive(apiClient, lookup.LiveOptions{})
			require.NoError(t, err)
			cache := fake.NewClientBuilder().Build()
			kind := "Secret"
			lookupOf := func() error {
				r := lookup.Reader{Cache: cache, Live: live.ForRequest()}
				if _, ok := tc.obj.(*corev1.Service); ok {
					kind = "Service"
					_, err := r.Service(context.Background(), "a", "db")
					return err
				}
				_, err := r.Secret(context.Background(), "a", "db")
				return err
			}
			require.True(t, apierrors.IsNotFound(lookupOf()))
			require.True(t, apierrors.IsNotFound(lookupOf()), "negative entry")
			require.Len(t, apiClient.Gets(), 1)

			if tc.obj == nil { // the object appears behind stsguard's back first
				require.NoError(t, api.Create(ctx, secret("db")))
			}
			_ = tc.write(live.ForgetOnWrite(api)) // a failed write forgets too
			require.NoError(t, lookupOf(), "%s: read live after the write", kind)
			assert.Len(t, apiClient.Gets(), 2)
		})
	}
}

// A read the API does not answer is abandoned after Timeout.
func TestLiveReadTimeout(t *testing.T) {
	apiClient := &countingReader{Reader: fake.NewClientBuilder().Build(), block: true}
	live, err := lookup.NewLive(apiClient, lookup.LiveOptions{Timeout: 20 * time.Millisecond})
	require.NoError(t, err)
	r := lookup.Reader{Cache: fake.NewClientBuilder().Build(), Live: live.ForRequest()}
	start := time.Now()
	_, err = r.Service(context.Background(), "a", "slow")
	assert.True(t, apierrors.IsNotFound(err), "the cache's answer stands: %v", err)
	assert.Less(t, time.Since(start), 5*time.Second, "the read was abandoned")
	assert.Equal(t, []string{"a/slow"}, apiClient.Gets())
}

// The cache is always asked first: a negative entry never hides an object
// the informer has delivered since.
func TestNegativeCacheNeverHidesACachedObject(t *testing.T) {
	cache := fake.NewClientBuilder().Build()
	live, err := lookup.NewLive(&countingReader{Reader: fake.NewClientBuilder().Build()}, lookup.LiveOptions{})
	require.NoError(t, err)
	_, err = lookup.Reader{Cache: cache, Live: live.ForRequest()}.Service(context.Background(), "a", "web")
	require.True(t, apierrors.IsNotFound(err))

	require.NoError(t, cache.Create(context.Background(), svc("web")))
	got, err := lookup.Reader{Cache: cache, Live: live.ForRequest()}.Service(context.Background(), "a", "web")
	require.NoError(t, err)
	assert.Equal(t, "web", got.Name)
}

// An object read live goes through Transform, as the informer's copy does.
func TestLiveReadIsTransformed(t *testing.T) {
	s := secret("db")
	s.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}"}
	drop := func(obj any) (any, error) {
		obj.(metav1.Object).SetAnnotations(nil)
		return obj, nil
	}
	live, err := lookup.NewLive(fake.NewClientBuilder().WithObjects(s).Build(), lookup.LiveOptions{Transform: drop})
	require.NoError(t, err)
	got, err := lookup.Reader{Cache: fake.NewClientBuilder().Build(), Live: live.ForRequest()}.Secret(context.Background(), "a", "db")
	require.NoError(t, err)
	assert.Empty(t, got.Annotations)
}

// Rules of one request may run concurrently: they still share one read.
func TestLiveRequestIsSafeForConcurrentUse(t *testing.T) {
	apiClient := &countingReader{Reader: fake.NewClientBuilder().WithObjects(svc("fresh")).Build()}
	live, err := lookup.NewLive(apiClient, lookup.LiveOptions{})
	require.NoError(t, err)
	r := lookup.Reader{Cache: fake.NewClientBuilder().Build(), Live: live.ForRequest()}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			got, err := r.Service(context.Background(), "a", "fresh")
			if assert.NoError(t, err) {
				assert.Equal(t, "fresh", got.Name)
			}
		})
	}
	wg.Wait()
	assert.Len(t, apiClient.Gets(), 1)
}

// A second server in one process (tests) reuses the registered metric.
func TestNewLiveRegistersTheMetricOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	for range 2 {
		_, err := lookup.NewLive(fake.NewClientBuilder().Build(), lookup.LiveOptions{Registerer: reg})
		require.NoError(t, err)
	}
	clash := prometheus.NewRegistry()
	require.NoError(t, clash.Register(prometheus.NewGauge(prometheus.GaugeOpts{Name: "stsguard_lookup_cache_misses_total", Help: "x"})))
	_, err := lookup.NewLive(fake.NewClientBuilder().Build(), lookup.LiveOptions{Registerer: clash})
	assert.ErrorContains(t, err, "stsguard_lookup_cache_misses_total")
}

// gatedReader answers each GET from the Reader only once release is
// closed, after saying on started that the GET began.
type gatedReader struct {
	countingReader
	started chan struct{}
	release chan struct{}
}

func (g *gatedReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	select {
	case g.started <- struct{}{}:
	default:
	}
	<-g.release
	return g.countingReader.Get(ctx, key, obj, opts...)
}

// A "not found" to a read that began before stsguard wrote the object
// (another request's read, racing the write) is not kept in the negative
// cache: the next request reads it live and finds it.
func TestNegativeCacheIgnoresAReadThatRacedAWrite(t *testing.T) {
	ctx := context.Background()
	api := fake.NewClientBuilder().Build()
	gated := &gatedReader{countingReader: countingReader{Reader: api}, started: make(chan struct{}, 1), release: make(chan struct{})}
	live, err := lookup.NewLive(gated, lookup.LiveOptions{})
	require.NoError(t, err)
	cache := fake.NewClientBuilder().Build()

	done := make(chan error, 1)
	go func() {
		_, err := lookup.Reader{Cache: cache, Live: live.ForRequest()}.Secret(context.Background(), "a", "db")
		done <- err
	}()
	<-gated.started // the read is under way and will answer "not found"
	require.NoError(t, live.ForgetOnWrite(api).Create(ctx, secret("db")))
	// The racing read returns what it saw before the write.
	require.NoError(t, api.Delete(ctx, secret("db")))
	close(gated.release)
	require.True(t, apierrors.IsNotFound(<-done))
	require.NoError(t, api.Create(ctx, secret("db")))

	_, err = lookup.Reader{Cache: cache, Live: live.ForRequest()}.Secret(context.Background(), "a", "db")
	require.NoError(t, err, "read live again, not answered by a negative entry from before the write")
	assert.Len(t, gated.Gets(), 2)
}
