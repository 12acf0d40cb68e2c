package webhook

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"
)

// HTTPHandlers returns the handlers the server registers, by path: each
// webhook of Webhooks, with LazyLogConstructor as its LogConstructor
// (unless one is set), served as Serve serves it, and with request.object
// and request.oldObject decoded as the webhook's kind in the envelope's
// pass when that gives the handler the same objects (decodeTypedReview).
func (h *Handlers) HTTPHandlers() map[string]http.Handler {
	out := map[string]http.Handler{}
	for path, w := range h.webhooks() {
		if w.wh.LogConstructor == nil {
			w.wh.LogConstructor = LazyLogConstructor
		}
		out[path] = &reviewServer{wh: w.wh, decodeTyped: w.kind.decodeReview}
	}
	return out
}

// Serve returns an http.Handler that answers as wh.ServeHTTP does, but
// decodes the AdmissionReview envelope in one pass instead of two.
//
// controller-runtime's ServeHTTP decodes the body with apimachinery's
// universal deserializer: a first encoding/json pass over the whole body
// (objects included) only to read apiVersion and kind
// (SimpleMetaFactory.Interpret), then the sigs.k8s.io/json decode. Serve
// does that second decode alone, with the same decoder, into the same
// types, and takes apiVersion and kind from the decoded envelope. It then
// calls wh.Handle (panic recovery, the request's logger, Response.Complete)
// and writes the response as controller-runtime does (encoding/json, the
// AdmissionReview typed with the request's apiVersion and kind, the same
// V(5) logs).
//
// Every request the fast path is not sure to answer identically goes to
// wh.ServeHTTP itself, with the body bytes already read put back: a
// missing body, a Content-Type other than application/json, a body that
// cannot be read or is over controller-runtime's limit, a body that does
// not decode, and one whose apiVersion or kind is empty (encoding/json
// matches keys case-insensitively, so "Kind" would be its kind) or whose
// apiVersion does not parse. So every error response and error log is
// controller-runtime's own. The one difference: a body that holds both
// "kind" and a differently cased key such as "Kind" (which the apiserver
// never sends) is answered typed with "kind"'s value, where
// controller-runtime takes the last of them.
func Serve(wh *admission.Webhook) http.Handler {
	return &reviewServer{wh: wh}
}

// maxRequestSize is controller-runtime's limit of an AdmissionReview body
// (admission.maxRequestSize, unexported there): 7 MiB.
const maxRequestSize = int64(7 * 1024 * 1024)

type reviewServer struct {
	wh *admission.Webhook
	// decodeTyped, when set, decodes the review first, with its objects
	// typed; the envelope decode follows when it returns false.
	decodeTyped reviewDecoder

	logOnce sync.Once
	log     logr.Logger
}

func (s *reviewServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.Header.Get("Content-Type") != "application/json" {
		s.wh.ServeHTTP(w, r)
		return
	}
	limited := &io.LimitedReader{R: r.Body, N: maxRequestSize}
	body, err := readAll(limited, r.ContentLength)
	if err != nil || limited.N <= 0 {
		// controller-runtime reads the same bytes again, then the same
		// error or the rest of the body over the limit.
		rest := r.Body
		if err != nil {
			rest = io.NopCloser(errReader{err})
		}
		s.fallback(w, r, body, rest)
		return
	}
	_ = r.Body.Close()

	req := admission.Request{}
	ar := admissionv1.AdmissionReview{Request: &req.AdmissionRequest}
	if s.decodeTyped == nil || !s.decodeTyped(body, &ar) {
		req = admission.Request{}
		ar = admissionv1.AdmissionReview{Request: &req.AdmissionRequest}
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(body, &ar); err != nil {
			s.fallback(w, r, body, http.NoBody)
			return
		}
	}
	if ar.APIVersion == "" || ar.Kind == "" {
		s.fallback(w, r, body, http.NoBody)
		return
	}
	gv, err := schema.ParseGroupVersion(ar.APIVersion)
	if err != nil {
		s.fallback(w, r, body, http.NoBody)
		return
	}
	gvk := gv.WithKind(ar.Kind)

	ctx := r.Context()
	if s.wh.WithContextFunc != nil {
		ctx = s.wh.WithContextFunc(ctx, r)
	}
	// The request's logger only when the line is written (controller-runtime
	// builds it first, which with DefaultLogConstructor adds six values).
	if s.logger(nil).V(5).Enabled() {
		s.logger(&req).V(5).Info("received request")
	}
	resp := s.wh.Handle(ctx, req)

	out := admissionv1.AdmissionReview{Response: &resp.AdmissionResponse}
	out.SetGroupVersionKind(gvk)
	if err := json.NewEncoder(w).Encode(out); err != nil {
		// As controller-runtime's writeAdmissionResponse.
		s.logger(nil).Error(err, "unable to encode and write the response")
		serverError := admission.Errored(http.StatusInternalServerError, err)
		if err = json.NewEncoder(w).Encode(admissionv1.AdmissionReview{Response: &serverError.AdmissionResponse}); err != nil {
			s.logger(nil).Error(err, "still unable to encode and write the InternalServerError response")
		}
		return
	}
	if log := s.logger(nil); log.V(5).Enabled() {
		res := out.Response
		if res.Result != nil {
			log = log.WithValues("code", res.Result.Code, "reason", res.Result.Reason, "message", res.Result.Message)
		}
		log.V(5).Info("wrote response", "requestID", res.UID, "allowed", res.Allowed)
	}
}

// fallback hands the request to controller-runtime's ServeHTTP with the
// body bytes read so far in front of rest.
func (s *reviewServer) fallback(w http.ResponseWriter, r *http.Request, read []byte, rest io.ReadCloser) {
	r2 := r.Clone(r.Context())
	r2.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(read), rest), rest}
	s.wh.ServeHTTP(w, r2)
}

// logger is the logger controller-runtime's Webhook builds for req (nil
// outside a request): its LogConstructor, or DefaultLogConstructor, over
// the logger named "admission".
func (s *reviewServer) logger(req *admission.Request) logr.Logger {
	s.logOnce.Do(func() { s.log = logf.Log.WithName("admission") })
	c := s.wh.LogConstructor
	if c == nil {
		c = admission.DefaultLogConstructor
	}
	return c(s.log, req)
}

// readAll is io.ReadAll with a first buffer of size+1 bytes when the
// size is known (the apiserver sends Content-Length): one allocation
// instead of a growing buffer's six to eight for a review of 10 to 40 kB.
func readAll(r io.Reader, size int64) ([]byte, error) {
	if size <= 0 || size >= maxRequestSize {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, size+1) // +1: EOF without growing
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			// Longer than Content-Length said: grow as io.ReadAll does.
			b = append(b, 0)[:len(b)]
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// LazyLogConstructor is an admission.Webhook LogConstructor that gives a
// request's logger the same values as admission.DefaultLogConstructor
// (object, namespace, name, resource, user, requestID) but adds them only
// when a line is logged. DefaultLogConstructor adds them on every request,
// and zap encodes them right away: two loggers built per request (one in
// ServeHTTP for a V(5) line, one in Handle), whether or not anything is
// logged, were 3 to 6% of the serving process's CPU.
func LazyLogConstructor(base logr.Logger, req *admission.Request) logr.Logger {
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
