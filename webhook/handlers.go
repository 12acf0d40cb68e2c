package webhook

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/stsguard/stsguard/engine"
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
	// server a lookup.Reader over the informer cache. Required.
	Lookup func(ctx context.Context) engine.Lookup
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

// Webhooks returns every handler by the path it is served on.
func (h *Handlers) Webhooks() map[string]*admission.Webhook {
	return map[string]*admission.Webhook{
		MutateStatefulSetPath:   mutating(h, &statefulSets),
		ValidateStatefulSetPath: validating(h, &statefulSets),
		MutateServicePath:       mutating(h, &services),
		ValidateServicePath:     validating(h, &services),
		ValidateSecretPath:      validating(h, &secrets),
	}
}

func validating[T engine.Object](h *Handlers, k *kind[T]) *admission.Webhook {
	return &admission.Webhook{Handler: admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		return validate(ctx, h, k, req)
	})}
}

func mutating[T engine.Object](h *Handlers, k *kind[T]) *admission.Webhook {
	return &admission.Webhook{Handler: admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		return mutate(ctx, h, k, req)
	})}
}

// kind describes how one kind is decoded and judged.
type kind[T engine.Object] struct {
	name     engine.Kind
	gvk      metav1.GroupVersionKind
	gk       schema.GroupKind
	new      func() T
	validate func(*engine.Engine, *engine.Input[T], engine.Lookup) engine.Result
	mutate   func(*engine.Engine, *engine.Input[T], engine.Lookup) (T, *engine.Mutation, engine.Result)
	// onDelete is true when the kind's rules judge DELETE (the object is
	// then request.oldObject).
	onDelete bool
	// scale turns an UPDATE of the kind's scale subresource into the update
	// of the object it amounts to; nil for a kind without one.
	scale func(req admission.Request, lk engine.Lookup) (*engine.Input[T], error)
}

var (
	statefulSets = kind[*appsv1.StatefulSet]{
		name:     engine.KindStatefulSet,
		gvk:      metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"},
		gk:       schema.GroupKind{Group: "apps", Kind: "StatefulSet"},
		new:      func() *appsv1.StatefulSet { return &appsv1.StatefulSet{} },
		validate: (*engine.Engine).ValidateStatefulSet,
		mutate:   (*engine.Engine).MutateStatefulSet,
		scale:    statefulSetScale,
	}
	services = kind[*corev1.Service]{
		name:     engine.KindService,
		gvk:      metav1.GroupVersionKind{Version: "v1", Kind: "Service"},
		gk:       schema.GroupKind{Kind: "Service"},
		new:      func() *corev1.Service { return &corev1.Service{} },
		validate: (*engine.Engine).ValidateService,
		mutate:   (*engine.Engine).MutateService,
		onDelete: true,
	}
	secrets = kind[*corev1.Secret]{
		name:     engine.KindSecret,
		gvk:      metav1.GroupVersionKind{Version: "v1", Kind: "Secret"},
		gk:       schema.GroupKind{Kind: "Secret"},
		new:      func() *corev1.Secret { return &corev1.Secret{} },
		validate: (*engine.Engine).ValidateSecret,
		onDelete: true,
	}
)

func validate[T engine.Object](ctx context.Context, h *Handlers, k *kind[T], req admission.Request) admission.Response {
	start := time.Now()
	lk := h.Lookup(ctx)
	var in *engine.Input[T]
	var bad *admission.Response
	if req.SubResource != "" {
		in, bad = decodeSubresource(ctx, k, req, lk)
	} else {
		in, bad = decode(k, req)
	}
	if bad != nil {
		h.Metrics.errored(k.name, reasonBadRequest)
		return *bad
	}
	if in == nil {
		return admission.Allowed("")
	}
	defer h.Metrics.observe(k.name, in.Operation, "validating", start)
	log := logf.FromContext(ctx)
	res := k.validate(h.Engine(), in, lk)
	record(h, log, k, in, res)
	if len(res.Findings.ByAction(engine.Deny)) > 0 {
		return denied(log, k, in, res.Findings)
	}
	resp := admission.Allowed("")
	resp.Warnings = warnings(res.Findings)
	resp.AuditAnnotations = auditAnnotations(res.Findings)
	return resp
}

func mutate[T engine.Object](ctx context.Context, h *Handlers, k *kind[T], req admission.Request) admission.Response {
	start := time.Now()
	in, bad := decode(k, req)
	if bad != nil {
		h.Metrics.errored(k.name, reasonBadRequest)
		return *bad
	}
	if in == nil || in.Operation == admissionv1.Delete {
		return admission.Allowed("")
	}
	defer h.Metrics.observe(k.name, in.Operation, "mutating", start)
	e, lk := h.Engine(), h.Lookup(ctx)
	log := logf.FromContext(ctx)

	mutated, m, mres := k.mutate(e, in, lk)
	record(h, log, k, in, mres)
	if len(mres.Findings.ByAction(engine.Deny)) > 0 {
		return denied(log, k, in, mres.Findings)
	}
	// Judge the object as it would be stored, in the world the mutation
	// would leave (its Secrets written): a request the validating webhook
	// would deny gets no patch and writes nothing.
	vres := k.validate(e, &engine.Input[T]{Operation: in.Operation, Object: mutated, OldObject: in.OldObject, DryRun: in.DryRun}, m.Lookup(lk))
	if len(vres.Findings.ByAction(engine.Deny)) > 0 {
		// The validating webhook will not see this request: account for it here.
		record(h, log, k, in, vres)
		return denied(log, k, in, append(vres.Findings, mres.Findings...))
	}
	if !in.DryRun {
		var deny *admission.Response
		if m, deny = writeSecrets(ctx, h, log, k, in, m, &mres); deny != nil {
			return *deny
		}
	}
	resp := admission.Patched("", m.Patch()...)
	resp.Warnings = warnings(mres.Findings)
	resp.AuditAnnotations = auditAnnotations(mres.Findings)
	for _, c := range m.Changes() {
		resp.Warnings = append(resp.Warnings, c.Warning())
	}
	if len(m.Patch()) > 0 {
		log.Info("mutated", "rules", changeRules(m.Changes()), "dryRun", in.DryRun)
		if !in.DryRun {
			h.Metrics.mutated(m.Changes())
		}
	}
	return resp
}

// denied answers with the Deny findings as an apierrors.NewInvalid status
// and the Warn findings as warnings.
func denied[T engine.Object](log logr.Logger, k *kind[T], in *engine.Input[T], fs engine.Findings) admission.Response {
	log.Info("denied", "rules", ruleIDs(fs.ByAction(engine.Deny)), "dryRun", in.DryRun)
	resp := invalid(k.gk, objectName(in.Subject()), fs)
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
func record[T engine.Object](h *Handlers, log logr.Logger, k *kind[T], in *engine.Input[T], res engine.Result) {
	for _, f := range res.Findings {
		switch {
		case f.Error.Type == field.ErrorTypeInternal:
			log.Error(errors.New(f.Error.Detail), "rule could not be evaluated; request not blocked", "rule", f.Rule)
		case f.Action == engine.Audit:
			log.Info("audit finding", "rule", f.Rule, "field", f.Error.Field, "message", f.Error.ErrorBody(), "dryRun", in.DryRun)
		}
		h.Metrics.finding(f, k.name, in.Operation)
	}
	for _, x := range res.Exemptions {
		log.Info("exemption used", "rule", x.Rule, "by", x.By, "reason", x.Reason, "dryRun", in.DryRun)
		h.Metrics.exempted(x)
	}
}

// decode reads the request's objects. It returns a nil input for a request
// stsguard does not judge (CONNECT, or DELETE of a kind without DELETE
// rules) and a 400 response for a request it cannot read: a wrong kind, a
// missing or undecodable object.
func decode[T engine.Object](k *kind[T], req admission.Request) (*engine.Input[T], *admission.Response) {
	fail := func(format string, args ...any) (*engine.Input[T], *admission.Response) {
		r := badRequest(fmt.Sprintf(format, args...))
		return nil, &r
	}
	what := gvkString(k.gvk)
	if req.Kind != k.gvk {
		return fail("this stsguard webhook admits %s, not %s; check the rules of the webhook configuration", what, gvkString(req.Kind))
	}
	in := &engine.Input[T]{Operation: req.Operation, DryRun: ptr.Deref(req.DryRun, false)}
	obj := func(raw []byte, field string) (T, *admission.Response) {
		var zero T
		if len(raw) == 0 {
			_, r := fail("request.%s is empty: a %s request must carry the %s", field, req.Operation, k.gvk.Kind)
			return zero, r
		}
		o := k.new()
		if err := decodeObject(raw, o, k.gvk); err != nil {
			_, r := fail("request.%s is not a valid %s: %v", field, what, err)
			return zero, r
		}
		if o.GetNamespace() == "" {
			o.SetNamespace(req.Namespace)
		}
		return o, nil
	}
	var bad *admission.Response
	switch req.Operation {
	case admissionv1.Create:
		in.Object, bad = obj(req.Object.Raw, "object")
	case admissionv1.Update:
		if in.Object, bad = obj(req.Object.Raw, "object"); bad == nil {
			in.OldObject, bad = obj(req.OldObject.Raw, "oldObject")
		}
	case admissionv1.Delete:
		if !k.onDelete {
			return nil, nil
		}
		in.OldObject, bad = obj(req.OldObject.Raw, "oldObject")
	case admissionv1.Connect:
		return nil, nil
	default:
		return fail("unknown operation %q; expected CREATE, UPDATE, DELETE or CONNECT", req.Operation)
	}
	if bad != nil {
		return nil, bad
	}
	return in, nil
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
