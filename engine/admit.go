package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/stsguard/stsguard/kinds"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phase says which admission phase, and so which of stsguard's webhooks,
// an Admit call stands for: mutating, validating, or both in turn.
type Phase int

const (
	// MutateAndValidate is what the apiserver does with one request: the
	// mutating webhook, then the validating webhook on the mutated object.
	// The audit replay uses it. The findings are both steps'.
	MutateAndValidate Phase = iota
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
	// Phase is the webhook the call stands for.
	Phase Phase
	// Kind is the kind of Object and OldObject.
	Kind kinds.Kind
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

// NewRequest returns the kind-erased Request for a typed input at phase:
// its kind from kinds.All(), its objects (a nil one stays nil). It is how
// a caller that holds typed objects (audit, tests) builds a Request.
func NewRequest[T Object](phase Phase, in *Input[T]) *Request {
	r := &Request{Phase: phase, Operation: in.Operation, DryRun: in.DryRun}
	if k, ok := kinds.Of(in.Subject()); ok {
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
	// Findings are the problems the phase reports (see Phase), each with
	// the action that applies to it.
	Findings Findings
	// Exemptions are the exemptions that suppressed a finding or a change,
	// one per rule and step.
	Exemptions []Exemption
	// Mutation is the JSON patch against Request.Object, the changes it
	// makes, and the Secrets it relies on; empty when denied, and for the
	// Validating phase. Never nil.
	Mutation *Mutation
}

// Denied reports whether the request is refused: a finding with action Deny.
func (d *Decision) Denied() bool { return len(d.Findings.ByAction(Deny)) > 0 }

// Admit decides req in the world lk reads, as stsguard's webhooks would:
// the mutators (unless the phase is Validating), then the checks on the
// object as it would be stored. See Phase for the findings of each phase.
//
// Every rule follows the same contract: a rule whose action is Off is not
// run; an exempted rule's findings are dropped and reported in Exemptions;
// on UPDATE a Deny finding that the stored object has too (judged as if it
// were created now) is downgraded to Warn (ratcheting, as Kubernetes does
// for validation that tightens: an existing problem must not block an
// unrelated change such as a scale-down), where "the same problem" means
// the same rule about the same thing, named rather than indexed (the
// container and env var by name, the Service or Secret and key it refers
// to; see findingKey), so that inserting an env var before an old problem
// keeps it ratcheted and pointing at another bad referent does not (a
// rule with an ActionOnUpdate is never ratcheted: its UPDATE findings are
// about the update); Lookup
// failures and rule panics are Warn findings of type
// field.ErrorTypeInternal (see Findings.Internal), so stsguard fails open.
// An object being deleted (deletionTimestamp set) is not judged. A mutator that is off or exempted changes nothing (an exemption it would
// have used is reported); one that reports a Deny finding leaves no patch
// and plans no write; one that fails midway (a Lookup error, a panic)
// leaves nothing of its own, with a Warn finding.
//
// A request the engine does not judge (an object being deleted through a
// finalizer-driven UPDATE; a DELETE for a kind without DELETE rules is
// judged and finds nothing) gets an empty decision. Admit returns an error
// only for a malformed Request: a kind the engine does not admit, an
// object that is not of the kind's Go type, an operation other than
// CREATE, UPDATE or DELETE, or objects that do not match the operation
// (CREATE: Object; UPDATE: both; DELETE: OldObject).
func (e *Engine) Admit(ctx context.Context, req *Request, lk Lookup) (*Decision, error) {
	switch req.Kind {
	case kinds.StatefulSet:
		return admit(ctx, e, &e.statefulSets, req, lk)
	case kinds.Service:
		return admit(ctx, e, &e.services, req, lk)
	case kinds.Secret:
		return admit(ctx, e, &e.secrets, req, lk)
	}
	return nil, fmt.Errorf("stsguard admits no kind %q", req.Kind)
}

// checkObjects reports a request whose objects do not match its
// operation: CREATE carries Object, UPDATE both, DELETE OldObject.
func checkObjects[T Object](op admissionv1.Operation, obj, old T) error {
	var zero T
	switch op {
	case admissionv1.Create:
		if obj == zero {
			return errors.New("no object")
		}
	case admissionv1.Update:
		if obj == zero || old == zero {
			return errors.New("an UPDATE needs the object and the old object")
		}
	case admissionv1.Delete:
		if old == zero {
			return errors.New("no old object")
		}
	default:
		return fmt.Errorf("operation %q is not CREATE, UPDATE or DELETE", op)
	}
	return nil
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
	if err := checkObjects(req.Operation, in.Object, in.OldObject); err != nil {
		return nil, fmt.Errorf("a %s %s request: %w", req.Kind, req.Operation, err)
	}
	d := &Decision{Object: req.Object, Mutation: &Mutation{}}
	if req.Phase == Validating {
		res := validate(ctx, e, ks, in, lk)
		d.Findings, d.Exemptions = res.Findings, res.Exemptions
		return d, nil
	}
	mutated, m, mres := mutate(ctx, e, ks, in, lk)
	d.Findings, d.Exemptions = mres.Findings, mres.Exemptions
	if len(mres.Findings.ByAction(Deny)) > 0 || in.Operation == admissionv1.Delete && req.Phase == Mutating {
		return d, nil
	}
	vres := validate(ctx, e, ks, &Input[T]{Operation: in.Operation, Object: mutated, OldObject: in.OldObject, DryRun: in.DryRun, Config: in.Config}, m.Lookup(lk))
	denied := len(vres.Findings.ByAction(Deny)) > 0
	switch {
	case req.Phase == MutateAndValidate:
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
