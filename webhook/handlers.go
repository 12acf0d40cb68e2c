package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/kinds"
)

// Paths the webhooks are served on; the webhook configurations in deploy/base register them.
const (
	MutateStatefulSetPath   = "/mutate-apps-v1-statefulset"
	ValidateStatefulSetPath = "/validate-apps-v1-statefulset"
	MutateServicePath       = "/mutate-v1-service"
	ValidateServicePath     = "/validate-v1-service"
	ValidateSecretPath      = "/validate-v1-secret"
)

// Handlers serves the admission webhooks of every kind stsguard guards.
type Handlers struct {
	// Engine returns the engine to decide with; called once per request so
	// that a reloaded policy takes effect on the next request. Required.
	Engine func() *engine.Engine
	// Lookup returns the rules' view of the cluster for one request: in the
	// server a lookup.Reader over the informer cache, with the request's
	// share of live reads. Required.
	Lookup func() engine.Lookup
	// Secrets writes the Secrets a mutation relies on and re-reads them after
	// a write conflict; it must read live, not from the cache. Required by
	// the mutating StatefulSet webhook only.
	Secrets client.Client
	// Metrics records findings, mutations, exemptions and latency; nil
	// records nothing.
	Metrics *Metrics
	// SecretWriteTimeout bounds the Secret writes of one request (the
	// create or patch, the re-read and the retry after a conflict); zero
	// means DefaultSecretWriteTimeout. See writeSecrets for what happens
	// when it runs out.
	SecretWriteTimeout time.Duration
}

// Webhooks returns controller-runtime's admission.Webhook of every handler,
// by the path it is served on (the server registers each as it is): a
// handler over Engine, Lookup, Secrets and Metrics, whose request logger
// (LogConstructor) has the values admission.DefaultLogConstructor gives it,
// added only when a line is logged (lazyLogConstructor).
func (h *Handlers) Webhooks() map[string]*admission.Webhook {
	statefulSets := newKind(kinds.StatefulSet, statefulSetScale)
	services := newKind(kinds.Service, nil)
	secrets := newKind(kinds.Secret, nil)
	return map[string]*admission.Webhook{
		MutateStatefulSetPath:   h.webhook(statefulSets, engine.Mutating),
		ValidateStatefulSetPath: h.webhook(statefulSets, engine.Validating),
		MutateServicePath:       h.webhook(services, engine.Mutating),
		ValidateServicePath:     h.webhook(services, engine.Validating),
		ValidateSecretPath:      h.webhook(secrets, engine.Validating),
	}
}

func (h *Handlers) webhook(k *kind, phase engine.Phase) *admission.Webhook {
	return &admission.Webhook{
		Handler: admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
			if phase == engine.Mutating {
				return mutate(ctx, h, k, req)
			}
			return validate(ctx, h, k, req)
		}),
		LogConstructor: lazyLogConstructor,
	}
}

// kind describes how one admitted kind is decoded: its entry of
// kinds.All(), in the forms an AdmissionReview and a Status use.
type kind struct {
	kinds.Info
	gvk metav1.GroupVersionKind
	gk  schema.GroupKind
	// scale turns an UPDATE of the kind's scale subresource into the update
	// of the object it amounts to; nil for a kind without one.
	scale func(ctx context.Context, req admission.Request, lk engine.Lookup) (*engine.Request, error)
}

func newKind(name kinds.Kind, scale func(context.Context, admission.Request, engine.Lookup) (*engine.Request, error)) *kind {
	info, ok := kinds.Get(name)
	if !ok || !info.Judged {
		panic(fmt.Sprintf("kinds.All() admits no kind %q", name))
	}
	g := info.GroupVersionKind
	return &kind{Info: info, scale: scale,
		gvk: metav1.GroupVersionKind{Group: g.Group, Version: g.Version, Kind: g.Kind}, gk: g.GroupKind()}
}

// validate is the validating webhook of kind k: decode, Admit (phase
// Validating), answer.
func validate(ctx context.Context, h *Handlers, k *kind, req admission.Request) admission.Response {
	start := time.Now()
	lk := h.Lookup()
	var r *engine.Request
	var bad *admission.Response
	if req.SubResource != "" {
		r, bad = decodeSubresource(ctx, k, req, lk)
	} else {
		r, bad = decode(k, req)
	}
	if bad != nil {
		h.Metrics.errored(k.Kind, reasonBadRequest)
		return *bad
	}
	if r == nil {
		return admission.Allowed("")
	}
	defer h.Metrics.observe(k.Kind, r.Operation, "validating", start)
	log := logf.FromContext(ctx)
	r.Phase = engine.Validating
	d, err := h.Engine().Admit(ctx, r, lk)
	if err != nil {
		return internalError(h, log, k, err)
	}
	record(h, log, k, r, d.Findings, d.Exemptions)
	if d.Denied() {
		return denied(log, k, r, d.Findings)
	}
	resp := admission.Allowed("")
	resp.Warnings = warnings(d.Findings)
	resp.AuditAnnotations = auditAnnotations(d.Findings)
	return resp
}

// mutate is the mutating webhook of kind k: decode, Admit (phase
// Mutating), execute the Secret writes the decision plans, answer with
// the patch.
func mutate(ctx context.Context, h *Handlers, k *kind, req admission.Request) admission.Response {
	start := time.Now()
	r, bad := decode(k, req)
	if bad != nil {
		h.Metrics.errored(k.Kind, reasonBadRequest)
		return *bad
	}
	if r == nil || r.Operation == admissionv1.Delete {
		return admission.Allowed("")
	}
	defer h.Metrics.observe(k.Kind, r.Operation, "mutating", start)
	log := logf.FromContext(ctx)
	r.Phase = engine.Mutating
	e := h.Engine()
	d, err := e.Admit(ctx, r, h.Lookup())
	if err != nil {
		return internalError(h, log, k, err)
	}
	record(h, log, k, r, d.Findings, d.Exemptions)
	if d.Denied() {
		return denied(log, k, r, d.Findings)
	}
	if !r.DryRun {
		if deny := writeSecrets(ctx, h, e, log, k, r, d); deny != nil {
			return *deny
		}
	}
	m := d.Mutation
	resp := admission.Patched("", m.Patch()...)
	resp.Warnings = warnings(d.Findings)
	resp.AuditAnnotations = auditAnnotations(d.Findings)
	for _, c := range m.Changes() {
		resp.Warnings = append(resp.Warnings, c.Warning())
	}
	if len(m.Patch()) > 0 {
		log.Info("mutated", "rules", changeRules(m.Changes()), "dryRun", r.DryRun)
		if !r.DryRun {
			h.Metrics.mutated(m.Changes())
		}
	}
	return resp
}

// internalError answers a request the engine refused to decide (a kind
// or object type it does not admit: a bug of stsguard's, never of the
// request) with an HTTP 500, which the webhook's failurePolicy then
// decides.
func internalError(h *Handlers, log logr.Logger, k *kind, err error) admission.Response {
	log.Error(err, "the engine could not decide the request")
	h.Metrics.errored(k.Kind, reasonInternal)
	return admission.Errored(http.StatusInternalServerError, err)
}

// denied answers with the Deny findings as an apierrors.NewInvalid status
// and the Warn findings as warnings.
func denied(log logr.Logger, k *kind, r *engine.Request, fs engine.Findings) admission.Response {
	log.Info("denied", "rules", ruleIDs(fs.ByAction(engine.Deny)), "dryRun", r.DryRun)
	resp := invalid(k.gk, objectName(r.Subject()), fs)
	resp.AuditAnnotations = auditAnnotations(fs)
	return resp
}

// objectName is the name to report in a denial; an object created with
// generateName has none yet.
func objectName(o metav1.Object) string {
	if o.GetName() != "" {
		return o.GetName()
	}
	return o.GetGenerateName()
}

// record logs and counts what a result holds: internal failures (for the
// person paged), Audit findings (for the audit trail), used exemptions, and
// every finding by rule, action, kind and operation.
func record(h *Handlers, log logr.Logger, k *kind, r *engine.Request, fs engine.Findings, xs []engine.Exemption) {
	for _, f := range fs {
		switch {
		case f.Error.Type == field.ErrorTypeInternal:
			log.Error(errors.New(f.Error.Detail), "rule could not be evaluated; request not blocked", "rule", f.Rule)
		case f.Action == engine.Audit:
			log.Info("audit finding", "rule", f.Rule, "field", f.Error.Field, "message", f.Error.ErrorBody(), "dryRun", r.DryRun)
		}
		h.Metrics.finding(f, k.Kind, r.Operation)
	}
	for _, x := range xs {
		log.Info("exemption used", "rule", x.Rule, "by", x.By, "reason", x.Reason, "dryRun", r.DryRun)
		h.Metrics.exempted(x)
	}
}

// decode reads the request's objects from their raw bytes into an
// engine.Request of k's kind.
// It returns nil for a request stsguard does not judge (CONNECT, or DELETE
// of a kind without DELETE rules) and a 400 response for a request it
// cannot read: a wrong kind, a missing or undecodable object.
func decode(k *kind, req admission.Request) (*engine.Request, *admission.Response) {
	fail := func(format string, args ...any) (*engine.Request, *admission.Response) {
		r := badRequest(fmt.Sprintf(format, args...))
		return nil, &r
	}
	what := gvkString(k.gvk)
	if req.Kind != k.gvk {
		return fail("this stsguard webhook admits %s, not %s; check the rules of the webhook configuration", what, gvkString(req.Kind))
	}
	r := &engine.Request{Kind: k.Kind, Operation: req.Operation, DryRun: ptr.Deref(req.DryRun, false)}
	obj := func(raw []byte, field string) (metav1.Object, *admission.Response) {
		if len(raw) == 0 {
			_, r := fail("request.%s is empty: a %s request must carry the %s", field, req.Operation, k.gvk.Kind)
			return nil, r
		}
		o := k.New()
		if err := decodeObject(raw, o, k.gvk); err != nil {
			_, r := fail("request.%s is not a valid %s: %v", field, what, err)
			return nil, r
		}
		if o.GetNamespace() == "" {
			o.SetNamespace(req.Namespace)
		}
		return o, nil
	}
	var bad *admission.Response
	switch req.Operation {
	case admissionv1.Create:
		r.Object, bad = obj(req.Object.Raw, "object")
	case admissionv1.Update:
		if r.Object, bad = obj(req.Object.Raw, "object"); bad == nil {
			r.OldObject, bad = obj(req.OldObject.Raw, "oldObject")
		}
	case admissionv1.Delete:
		if !k.JudgedOnDelete {
			return nil, nil
		}
		r.OldObject, bad = obj(req.OldObject.Raw, "oldObject")
	case admissionv1.Connect:
		return nil, nil
	default:
		return fail("unknown operation %q; expected CREATE, UPDATE, DELETE or CONNECT", req.Operation)
	}
	if bad != nil {
		return nil, bad
	}
	return r, nil
}

// decodeObject decodes an object the apiserver sent with sigs.k8s.io/json,
// the case-sensitive decoder apimachinery's JSON serializer uses, without
// the serializer's extra pass to read the kind: request.kind already said
// what it is, and the object's own apiVersion and kind are checked
// afterwards.
func decodeObject(raw []byte, into metav1.Object, want metav1.GroupVersionKind) error {
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, into); err != nil {
		return err
	}
	tm, ok := any(into).(interface {
		GroupVersionKind() schema.GroupVersionKind
	})
	if !ok {
		return fmt.Errorf("%T has no kind", into)
	}
	got := tm.GroupVersionKind()
	if got.Group != want.Group || got.Version != want.Version || got.Kind != want.Kind {
		return fmt.Errorf("its apiVersion and kind are %q and %q", got.GroupVersion().String(), got.Kind)
	}
	return nil
}

func gvkString(k metav1.GroupVersionKind) string {
	if k.Group == "" {
		return k.Version + " " + k.Kind
	}
	return k.Group + "/" + k.Version + " " + k.Kind
}

func ruleIDs(fs engine.Findings) string {
	ids := make([]string, 0, len(fs))
	for _, f := range fs {
		ids = append(ids, f.Rule)
	}
	return strings.Join(ids, ",")
}

func changeRules(cs []engine.Change) string {
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.Rule)
	}
	return strings.Join(ids, ",")
}
