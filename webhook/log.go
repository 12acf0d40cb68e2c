package webhook

import (
	"sync"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// lazyLogConstructor is the admission.Webhook LogConstructor of every
// handler: it gives a request's logger the same values as
// admission.DefaultLogConstructor (object, namespace, name, resource, user,
// requestID) but adds them only when a line is logged. DefaultLogConstructor
// adds them on every request, and zap encodes them right away: the two
// loggers controller-runtime builds per request (one in ServeHTTP for a
// V(5) line, one in Handle), whether or not anything is logged, were 3 to
// 6% of the serving process's CPU.
func lazyLogConstructor(base logr.Logger, req *admission.Request) logr.Logger {
	if req == nil || base.GetSink() == nil {
		return base
	}
	return base.WithSink(&lazySink{base: base.GetSink(), values: requestValues{
		namespace: req.Namespace, name: req.Name, resource: req.Resource,
		user: req.UserInfo.Username, uid: req.UID,
	}})
}

// requestValues are what DefaultLogConstructor logs of a request.
type requestValues struct {
	namespace, name, user string
	resource              metav1.GroupVersionResource
	uid                   types.UID
}

func (v requestValues) keysAndValues() []any {
	return []any{"object", klog.KRef(v.namespace, v.name),
		"namespace", v.namespace, "name", v.name,
		"resource", v.resource, "user", v.user,
		"requestID", v.uid,
	}
}

// lazySink is base with the request's values, added on first use.
type lazySink struct {
	base   logr.LogSink
	values requestValues

	once sync.Once
	sink logr.LogSink
}

var _ logr.LogSink = (*lazySink)(nil)

func (l *lazySink) full() logr.LogSink {
	l.once.Do(func() {
		l.sink = l.base.WithValues(l.values.keysAndValues()...)
		// One frame more than the caller expects: this sink's own.
		if cd, ok := l.sink.(logr.CallDepthLogSink); ok {
			l.sink = cd.WithCallDepth(1)
		}
	})
	return l.sink
}

// Init does nothing: base is initialized already.
func (l *lazySink) Init(logr.RuntimeInfo) {}

func (l *lazySink) Enabled(level int) bool { return l.base.Enabled(level) }

func (l *lazySink) Info(level int, msg string, keysAndValues ...any) {
	l.full().Info(level, msg, keysAndValues...)
}

func (l *lazySink) Error(err error, msg string, keysAndValues ...any) {
	l.full().Error(err, msg, keysAndValues...)
}

// WithValues and WithName return sinks of their own, with the request's
// values: nothing stays lazy past them. WithValues of nothing, as
// controller-runtime's log.FromContext(ctx) calls it, is the same sink.
func (l *lazySink) WithValues(keysAndValues ...any) logr.LogSink {
	if len(keysAndValues) == 0 {
		return l
	}
	return l.base.WithValues(l.values.keysAndValues()...).WithValues(keysAndValues...)
}

func (l *lazySink) WithName(name string) logr.LogSink {
	return l.base.WithValues(l.values.keysAndValues()...).WithName(name)
}
