package webhook

import (
	"context"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/stsguard/stsguard/webhook/rules"
)

// Paths the StatefulSet webhooks are served on; deploy/ registers them.
const (
	MutateStatefulSetPath   = "/mutate-apps-v1-statefulset"
	ValidateStatefulSetPath = "/validate-apps-v1-statefulset"
)

var (
	statefulSetGVK = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
	statefulSetGK  = schema.GroupKind{Group: "apps", Kind: "StatefulSet"}
)

// StatefulSets serves the mutating and validating admission webhooks for
// apps/v1 StatefulSets.
type StatefulSets struct {
	// Engine decides; required.
	Engine *rules.Engine
	// Reader serves the rules' lookups; the manager's informer cache.
	Reader client.Reader
	// Secrets writes the Secrets a mutation relies on and re-reads them after
	// a write conflict; it must read live, not from the cache (client.New,
	// not the manager's client). Required by Mutating only.
	Secrets client.Client
}

// NewStatefulSets returns the StatefulSet webhooks.
func NewStatefulSets(engine *rules.Engine, reader client.Reader, secrets client.Client) *StatefulSets {
	return &StatefulSets{Engine: engine, Reader: reader, Secrets: secrets}
}

// Mutating returns the handler of the mutating webhook. It first runs the
// validating rules and leaves a request they will deny untouched (no patch,
// no Secret written), then runs the mutators, writes the Secrets they need
// unless request.dryRun is set, and returns the JSON patch with a warning
// for each change.
func (s *StatefulSets) Mutating() admission.Handler { return admission.HandlerFunc(s.mutate) }

// Validating returns the handler of the validating webhook: Deny findings
// reject the request with apierrors.NewInvalid, Warn findings are warnings.
func (s *StatefulSets) Validating() admission.Handler { return admission.HandlerFunc(s.validate) }

func (s *StatefulSets) mutate(ctx context.Context, req admission.Request) admission.Response {
	in, bad := s.decode(req)
	if bad != nil {
		return *bad
	}
	if in.Object == nil {
		return admission.Allowed("")
	}
	log := logf.FromContext(ctx)
	lk := ReaderLookup{Ctx: ctx, Reader: s.Reader}
	if deny := s.Engine.ValidateStatefulSet(in, lk).ByAction(rules.Deny); len(deny) > 0 {
		log.V(1).Info("leaving a request that validation will deny unmutated", "rules", ruleIDs(deny))
		return admission.Allowed("")
	}
	m, findings := s.Engine.MutateStatefulSet(in, lk)
	logInternal(log, findings)
	if deny := findings.ByAction(rules.Deny); len(deny) > 0 {
		log.Info("denied", "rules", ruleIDs(deny))
		return invalid(statefulSetGK, objectName(in.Object), findings)
	}
	if !in.DryRun {
		for _, sr := range m.Secrets() {
			if resp := s.writeSecret(ctx, sr); resp != nil {
				return *resp
			}
		}
	}
	resp := admission.Patched("", m.Patch()...)
	resp.Warnings = warnings(findings)
	for _, c := range m.Changes() {
		resp.Warnings = append(resp.Warnings, fmt.Sprintf("%s: changed by stsguard: %s [rule: %s]", c.Field, c.Message, c.Rule))
	}
	if len(m.Patch()) > 0 {
		log.Info("mutated", "rules", changeRules(m.Changes()), "dryRun", in.DryRun)
	}
	return resp
}

func (s *StatefulSets) validate(ctx context.Context, req admission.Request) admission.Response {
	in, bad := s.decode(req)
	if bad != nil {
		return *bad
	}
	if in.Object == nil {
		return admission.Allowed("")
	}
	log := logf.FromContext(ctx)
	findings := s.Engine.ValidateStatefulSet(in, ReaderLookup{Ctx: ctx, Reader: s.Reader})
	logInternal(log, findings)
	if deny := findings.ByAction(rules.Deny); len(deny) > 0 {
		log.Info("denied", "rules", ruleIDs(deny), "dryRun", in.DryRun)
		return invalid(statefulSetGK, objectName(in.Object), findings)
	}
	resp := admission.Allowed("")
	resp.Warnings = warnings(findings)
	return resp
}

// decode reads the request's StatefulSets. It returns a 400 response for a
// request it cannot read: a wrong kind, a missing or undecodable object.
func (s *StatefulSets) decode(req admission.Request) (*rules.Input[*appsv1.StatefulSet], *admission.Response) {
	fail := func(format string, args ...any) (*rules.Input[*appsv1.StatefulSet], *admission.Response) {
		r := badRequest(fmt.Sprintf(format, args...))
		return nil, &r
	}
	if req.Kind != statefulSetGVK {
		return fail("stsguard's StatefulSet webhook admits apps/v1 StatefulSet, not %s; check the rules of the webhook configuration", gvkString(req.Kind))
	}
	in := &rules.Input[*appsv1.StatefulSet]{Operation: req.Operation, DryRun: ptr.Deref(req.DryRun, false)}
	switch req.Operation {
	case admissionv1.Create, admissionv1.Update:
		if len(req.Object.Raw) == 0 {
			return fail("request.object is empty: a %s request must carry the StatefulSet", req.Operation)
		}
		in.Object = &appsv1.StatefulSet{}
		if err := decodeStatefulSet(req.Object.Raw, in.Object); err != nil {
			return fail("request.object is not a valid apps/v1 StatefulSet: %v", err)
		}
		if in.Object.Namespace == "" {
			in.Object.Namespace = req.Namespace
		}
	case admissionv1.Delete, admissionv1.Connect:
		return in, nil
	default:
		return fail("unknown operation %q; expected CREATE, UPDATE, DELETE or CONNECT", req.Operation)
	}
	if req.Operation == admissionv1.Update {
		if len(req.OldObject.Raw) == 0 {
			return fail("request.oldObject is empty: an UPDATE request must carry the stored StatefulSet")
		}
		in.OldObject = &appsv1.StatefulSet{}
		if err := decodeStatefulSet(req.OldObject.Raw, in.OldObject); err != nil {
			return fail("request.oldObject is not a valid apps/v1 StatefulSet: %v", err)
		}
	}
	return in, nil
}

// decodeStatefulSet decodes an object the apiserver sent with
// sigs.k8s.io/json, the case-sensitive decoder apimachinery's JSON
// serializer uses, without the serializer's extra pass to read the kind:
// request.kind already said what it is, and the object's own apiVersion and
// kind are checked afterwards.
func decodeStatefulSet(raw []byte, into *appsv1.StatefulSet) error {
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, into); err != nil {
		return err
	}
	if into.APIVersion != "apps/v1" || into.Kind != "StatefulSet" {
		return fmt.Errorf("its apiVersion and kind are %q and %q", into.APIVersion, into.Kind)
	}
	return nil
}

func gvkString(k metav1.GroupVersionKind) string {
	if k.Group == "" {
		return k.Version + " " + k.Kind
	}
	return k.Group + "/" + k.Version + " " + k.Kind
}

// objectName is the name to report in a denial; an object created with
// generateName has none yet.
func objectName(o metav1.Object) string {
	if o.GetName() != "" {
		return o.GetName()
	}
	return o.GetGenerateName()
}

func ruleIDs(fs rules.Findings) string {
	ids := make([]string, 0, len(fs))
	for _, f := range fs {
		ids = append(ids, f.Rule)
	}
	return strings.Join(ids, ",")
}

func changeRules(cs []rules.Change) string {
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.Rule)
	}
	return strings.Join(ids, ",")
}

// logInternal logs the findings that report a failure of stsguard itself:
// the person paged for the webhook needs them, the user got a warning.
func logInternal(log interface {
	Error(error, string, ...any)
}, fs rules.Findings) {
	for _, f := range fs.Internal() {
		log.Error(fmt.Errorf("%s", f.Error.Detail), "rule could not be evaluated; request not blocked", "rule", f.Rule)
	}
}
