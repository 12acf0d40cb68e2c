package lookup

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/stsguard/stsguard/internal/promutil"
)

// Defaults of LiveOptions. A live read is a GET by name, which a healthy
// apiserver answers in a few milliseconds; these bounds keep a missing
// object from costing more than that, whoever asks and however often.
const (
	// DefaultNegativeTTL is how long a "not found" from the API is believed
	// without asking again: 2 s. A negative entry never hides an object the
	// informer cache has (the cache is asked first), so it matters only
	// while the cache lags behind the API, normally milliseconds; in that
	// window the entry may answer NotFound for an object created after it.
	// Meanwhile every write of a StatefulSet that names a missing Service
	// costs at most one GET per 2 s for that name, not several per write.
	DefaultNegativeTTL = 2 * time.Second
	// DefaultNegativeEntries bounds the negative cache: 4096 names (a few
	// hundred bytes each at most); the least recently used one goes first.
	DefaultNegativeEntries = 4096
	// DefaultQPS and DefaultBurst size the token bucket that every live
	// read takes a token from: 20 reads per second sustained, 50 at once,
	// per stsguard replica. A request reads at most one Service and one
	// Secret live, and only a name that neither the informer cache nor the
	// negative cache knows, so 50 covers a `helm install` or `kubectl apply`
	// of a few dozen StatefulSets that name Services and Secrets created a
	// moment before. A read finding the bucket empty is not made, never
	// waited for: the request is judged on the cache alone.
	DefaultQPS   = 20
	DefaultBurst = 50
	// DefaultTimeout bounds one live read: 500 ms, a tenth of the webhook
	// configurations' timeoutSeconds (5 s), so at most 1 s for a request's
	// two reads. A read that does not answer in time is abandoned and the
	// cache's answer stands.
	DefaultTimeout = 500 * time.Millisecond
)

// Answers of a cache miss, the values of the answer label of
// stsguard_lookup_cache_misses_total.
const (
	AnswerLiveFound     = "live-found"     // a live read found the object
	AnswerLiveNotFound  = "live-not-found" // a live read confirmed it is missing
	AnswerLiveError     = "live-error"     // the live read failed or timed out; the cache's NotFound stands
	AnswerNegativeCache = "negative-cache" // a live read said NotFound less than NegativeTTL ago
	AnswerRequestBudget = "request-budget" // the request has had its one live read of this kind
	AnswerRateLimited   = "rate-limited"   // the token bucket was empty
)

// LiveOptions configure Live. The zero value of each field means its
// default.
type LiveOptions struct {
	// NegativeTTL is how long a NotFound from the API answers again for the
	// same kind, namespace and name. Default DefaultNegativeTTL.
	NegativeTTL time.Duration
	// NegativeEntries is how many names the negative cache holds. Default
	// DefaultNegativeEntries.
	NegativeEntries int
	// QPS (reads per second) and Burst (reads at once) size the token bucket
	// of live reads. Defaults DefaultQPS and DefaultBurst.
	QPS   float32
	Burst int
	// Timeout bounds each live read. Default DefaultTimeout.
	Timeout time.Duration
	// Transform is applied to each object read live, so that it looks like
	// the informer cache's copy of it (the server drops managed fields,
	// kubectl's last-applied annotation and a Secret's values, keeping its
	// key names and digests: secretdata.Trim). Default: none.
	Transform func(any) (any, error)
	// Registerer registers stsguard_lookup_cache_misses_total. Default:
	// none, nothing is counted.
	Registerer prometheus.Registerer
	// Clock is the time of the negative cache and the token bucket. Default
	// the real clock; tests set a fake one.
	Clock clock.PassiveClock
}

// Live reads Services and Secrets from the API when the informer cache says
// they do not exist, for the Readers of one server. It is safe for
// concurrent use; each admission request takes its share with ForRequest.
//
// Only a cache miss of a Service or Secret is read live: the kinds of the
// objects whose freshness the rules need, an object created a moment ago
// that the informer has not delivered yet (the Secret the mutating webhook
// just wrote, read by the validating webhook; the Service that `kubectl
// apply` sent just before the StatefulSet). Each read is bounded four ways:
// one Service and one Secret per admission request (LiveRequest), none for
// a name the API said was missing less than NegativeTTL ago, none when the
// token bucket (QPS, Burst) is empty, and Timeout per read. A request's
// misses therefore cost at most one GET per kind, of a few milliseconds
// each, and never wait in a queue.
//
// The negative cache forgets a name when this replica writes the object
// (ForgetOnWrite): the mutating webhook looks the credentials Secret up,
// finds it missing, writes it, and the validating webhook must then read
// it, not the negative entry. A negative entry on another replica is not
// forgotten; it can hide an object only while that replica's informer has
// not delivered it, and for at most NegativeTTL.
type Live struct {
	client    client.Reader
	ttl       time.Duration
	timeout   time.Duration
	transform func(any) (any, error)
	misses    *utilcache.LRUExpireCache
	limiter   flowcontrol.PassiveRateLimiter
	counter   *prometheus.CounterVec
	// gen counts the writes Forget heard of; writes holds, for Timeout,
	// the gen of the last write of each object, so that a "not found" to a
	// read that began before that write is not believed for others: it
	// may have been answered before the write landed.
	gen    atomic.Uint64
	writes *utilcache.LRUExpireCache
}

// NewLive returns the live reads through c, which must read the API without
// a cache and without a client-side rate limit of its own (Live's token
// bucket is the limit). It returns an error when the metric cannot be
// registered.
func NewLive(c client.Reader, o LiveOptions) (*Live, error) {
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = DefaultNegativeTTL
	}
	if o.NegativeEntries <= 0 {
		o.NegativeEntries = DefaultNegativeEntries
	}
	if o.QPS <= 0 {
		o.QPS = DefaultQPS
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	l := &Live{
		client:    c,
		ttl:       o.NegativeTTL,
		timeout:   o.Timeout,
		transform: o.Transform,
		misses:    utilcache.NewLRUExpireCacheWithClock(o.NegativeEntries, o.Clock),
		writes:    utilcache.NewLRUExpireCacheWithClock(o.NegativeEntries, o.Clock),
		limiter:   flowcontrol.NewTokenBucketPassiveRateLimiterWithClock(o.QPS, o.Burst, o.Clock),
	}
	if o.Registerer != nil {
		counter := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stsguard_lookup_cache_misses_total",
			Help: "Services and Secrets the informer cache did not have, by kind and answer: live-found, live-not-found, live-error (a live read), negative-cache, request-budget, rate-limited (no live read made). Counted once per name per admission request.",
		}, []string{"kind", "answer"})
		var err error
		if l.counter, err = promutil.Register(o.Registerer, counter); err != nil {
			return nil, fmt.Errorf("registering stsguard_lookup_cache_misses_total: %w", err)
		}
	}
	return l, nil
}

// ForRequest returns the live reads of one admission request.
func (l *Live) ForRequest() *LiveRequest {
	return &LiveRequest{live: l}
}

// Forget drops the negative cache entry of kind (Service or Secret)
// namespace/name, if any: the next cache miss of it may read it live.
func (l *Live) Forget(kind, namespace, name string) {
	id := kind + "/" + namespace + "/" + name
	l.writes.Add(id, l.gen.Add(1), l.timeout) // a read under way ends within Timeout
	l.misses.Remove(id)
}

// ForgetOnWrite returns c, except that every Create, Update and Patch of a
// Service or Secret through it makes Live Forget that object, whether the
// write succeeded or not (an AlreadyExists says it exists too). Give it to
// whatever writes objects the rules read: in the server, the writer of the
// Secrets that password-secret-ref moves literals into.
func (l *Live) ForgetOnWrite(c client.Client) client.Client {
	return forgetting{Client: c, live: l}
}

type forgetting struct {
	client.Client
	live *Live
}

func (f forgetting) forget(obj client.Object) {
	switch obj.(type) {
	case *corev1.Service:
		f.live.Forget("Service", obj.GetNamespace(), obj.GetName())
	case *corev1.Secret:
		f.live.Forget("Secret", obj.GetNamespace(), obj.GetName())
	}
}

func (f forgetting) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	defer f.forget(obj)
	return f.Client.Create(ctx, obj, opts...)
}

func (f forgetting) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	defer f.forget(obj)
	return f.Client.Update(ctx, obj, opts...)
}

func (f forgetting) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	defer f.forget(obj)
	return f.Client.Patch(ctx, obj, patch, opts...)
}

// LiveRequest is one admission request's share of Live: at most one live
// read of a Service and one of a Secret (the rules look up one governing
// Service, and the Secret that matters most is the one the mutating webhook
// just wrote), and the same answer every time the request asks for the same
// object (the pairing rules each look up the governing Service). It is safe
// for concurrent use.
//
// On an UPDATE the rule engine re-checks the stored object (ratcheting)
// through the same Lookup, so it cannot tell that read from one for the new
// object. A name both objects reference gets the answer the request has
// already memoized; a name only the stored object references could take
// the request's read of its kind when it is still unspent.
type LiveRequest struct {
	live *Live
	mu   sync.Mutex
	// spent holds the kinds this request has read live.
	spent map[string]bool
	// answers holds, by kind/namespace/name, the object read live or nil
	// when it was answered NotFound, with or without a live read.
	answers map[string]client.Object
}

// get answers a cache miss of kind (Service or Secret) key: the object
// read live, or nil when it stays not found.
func (r *LiveRequest) get(ctx context.Context, kind string, key types.NamespacedName, newObj func() client.Object) client.Object {
	id := kind + "/" + key.Namespace + "/" + key.Name
	r.mu.Lock()
	defer r.mu.Unlock()
	if obj, ok := r.answers[id]; ok {
		return obj
	}
	obj, answer := r.read(ctx, kind, id, key, newObj)
	if r.answers == nil {
		r.answers = map[string]client.Object{}
	}
	r.answers[id] = obj
	if c := r.live.counter; c != nil {
		c.WithLabelValues(kind, answer).Inc()
	}
	return obj
}

func (r *LiveRequest) read(ctx context.Context, kind, id string, key types.NamespacedName, newObj func() client.Object) (client.Object, string) {
	l := r.live
	if _, ok := l.misses.Get(id); ok {
		return nil, AnswerNegativeCache
	}
	if r.spent[kind] {
		return nil, AnswerRequestBudget
	}
	if !l.limiter.TryAccept() {
		return nil, AnswerRateLimited
	}
	if r.spent == nil {
		r.spent = map[string]bool{}
	}
	r.spent[kind] = true
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	began := l.gen.Load()
	obj := newObj()
	err := l.client.Get(ctx, key, obj)
	if err == nil && l.transform != nil {
		_, err = l.transform(obj)
	}
	switch {
	case err == nil:
		return obj, AnswerLiveFound
	case apierrors.IsNotFound(err):
		if g, ok := l.writes.Get(id); !ok || g.(uint64) <= began {
			l.misses.Add(id, struct{}{}, l.ttl)
		} // else written while this read was under way: the answer may be stale
		return nil, AnswerLiveNotFound
	default:
		logf.FromContext(ctx).Error(err, "live read failed; judging with the informer cache, which does not have the object", "object", id)
		return nil, AnswerLiveError
	}
}
