package engine

import (
	"context"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Stage says which of stsguard's webhooks an Admit call stands for.
type Stage int

const (
	// MutateAndValidate is what the apiserver does with one request: the
	// mutating webhook, then the validating webhook on the mutated object.
	// The audit replay and expand's pre-flight use it. The findings are
	// both steps'.
	MutateAndValidate Stage = iota
	// Mutating is the mutating webhook's decision: the mutators run, and
	// the mutated object is judged by the checks in the world the mutation
	// leaves (its Secrets written), so that a request the validating
	// webhook would deny gets no patch and writes nothing. The findings are
	// the mutators'; the checks' findings are reported only when they deny
	// (the validating webhook, which reports them otherwise, will not see
	// the request).
	Mutating
	// Validating is the validating webhook's decision: the checks on the
	// object as received, which the mutating webhooks have changed already.
	Validating
)

// Request is one admission request, kind-erased: the webhook decodes it
// from an AdmissionReview (admission.k8s.io/v1), audit replays it from a
// manifest.
type Request struct {
	// Stage is the webhook the call stands for.
	Stage Stage
	// Kind is the kind of Object and OldObject.
	Kind Kind
	// Operation is admissionv1.Create, Update or Delete.
	Operation admissionv1.Operation
	// Object is the object as it would be stored: a *appsv1.StatefulSet,
	// *corev1.Service or *corev1.Secret per Kind; nil on DELETE. Admit
	// does not modify it.
	Object metav1.Object
	// OldObject is the stored object on UPDATE and DELETE; nil on CREATE.
	OldObject metav1.Object
	// DryRun is request.dryRun: the request must leave nothing behind. The
	// decision is the same; the caller executes no write.
	DryRun bool
}

// NewRequest returns the kind-erased Request for a typed input at stage:
// its kind from engine.Kinds, its objects (a nil one stays nil). It is how
// a caller that holds typed objects (audit, tests) builds a Request.
func NewRequest[T Object](stage Stage, in *Input[T]) *Request {
	r := &Request{Stage: stage, Operation: in.Operation, DryRun: in.DryRun}
	if k, ok := KindOf(in.Subject()); ok {
		r.Kind = k.Kind
	}
	var zero T
	if in.Object != zero {
		r.Object = in.Object
	}
	if in.OldObject != zero {
		r.OldObject = in.OldObject
	}
	return r
}

// Subject returns the object the request is about: Object, or OldObject
// on DELETE.
func (r *Request) Subject() metav1.Object {
	if r.Operation == admissionv1.Delete {
		return r.OldObject
	}
	return r.Object
}

// Decision is the outcome of one Request: what the webhook answers and the
// writes it must make first. It performs nothing: the caller executes
// Mutation.Secrets() (the webhook, under a deadline) or records them (audit).
type Decision struct {
	// Object is the object as it would be stored: Request.Object with the
	// mutation applied, or Request.Object itself when nothing changed or
	// the request is denied; nil on DELETE.
	Object metav1.Object
	// Findings are the problems the stage reports (see Stage), each with
	// the action that applies to it.
	Findings Findings
	// Exemptions are the exemptions that suppressed a finding or a change,
	// one per rule and step.
	Exemptions []Exemption
	// Mutation is the JSON patch against Request.Object, the changes it
	// makes, and the Secrets it relies on; empty when denied, and for the
	// Validating stage. Never nil.
	Mutation *Mutation
}

// Denied reports whether the request is refused: a finding with action Deny.
func (d *Decision) Denied() bool { return len(d.Findings.ByAction(Deny)) > 0 }

// Admit decides req in the world lk reads, as stsguard's webhooks would:
// the mutators (unless the stage is Validating), then the checks on the
// object as it would be stored. See Stage for the findings of each stage,
// and validate and mutate for the contract every rule follows (actions,
// exemptions, ratcheting, failing open on a Lookup error or a panic).
//
// A request the engine does not judge (an object being deleted through a
// finalizer-driven UPDATE; a DELETE for a kind without DELETE rules is
// judged and finds nothing) gets an empty decision. Admit returns an error
// only for a malformed Request: a kind the engine does not admit, or an
// object that is not of the kind's Go type.
func (e *Engine) Admit(ctx context.Context, req *Request, lk Lookup) (*Decision, error) {
	switch req.Kind {
	case KindStatefulSet:
		return admit(ctx, e, &e.statefulSets, req, lk)
	case KindService:
		return admit(ctx, e, &e.services, req, lk)
	case KindSecret:
		return admit(ctx, e, &e.secrets, req, lk)
	}
	return nil, fmt.Errorf("stsguard admits no kind %q", req.Kind)
}

func admit[T Object](ctx context.Context, e *Engine, ks *kindRules[T], req *Request, lk Lookup) (*Decision, error) {
	in := &Input[T]{Operation: req.Operation, DryRun: req.DryRun, Config: &e.cfg}
	for _, o := range []struct {
		from metav1.Object
		to   *T
		name string
	}{{req.Object, &in.Object, "object"}, {req.OldObject, &in.OldObject, "oldObject"}} {
		if o.from == nil {
			continue
		}
		t, ok := o.from.(T)
		if !ok {
			return nil, fmt.Errorf("the %s of a %s request is a %T", o.name, req.Kind, o.from)
		}
		*o.to = t
	}
	d := &Decision{Object: req.Object, Mutation: &Mutation{}}
	if req.Stage == Validating {
		res := validate(ctx, e, ks, in, lk)
		d.Findings, d.Exemptions = res.Findings, res.Exemptions
		return d, nil
	}
	mutated, m, mres := mutate(ctx, e, ks, in, lk)
	d.Findings, d.Exemptions = mres.Findings, mres.Exemptions
	if len(mres.Findings.ByAction(Deny)) > 0 || in.Operation == admissionv1.Delete && req.Stage == Mutating {
		return d, nil
	}
	vres := validate(ctx, e, ks, &Input[T]{Operation: in.Operation, Object: mutated, OldObject: in.OldObject, DryRun: in.DryRun, Config: in.Config}, m.Lookup(lk))
	denied := len(vres.Findings.ByAction(Deny)) > 0
	switch {
	case req.Stage == MutateAndValidate:
		d.Findings = append(append(Findings{}, mres.Findings...), vres.Findings...)
		d.Exemptions = append(d.Exemptions, vres.Exemptions...)
	case denied:
		d.Findings = append(append(Findings{}, vres.Findings...), mres.Findings...)
		d.Exemptions = append(d.Exemptions, vres.Exemptions...)
	}
	if denied {
		return d, nil
	}
	d.Mutation = m
	if !m.Empty() {
		d.Object = mutated
	}
	return d, nil
}
