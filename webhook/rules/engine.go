package rules

import (
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Engine evaluates the registered rules and mutators. It is safe for
// concurrent use; build it once with New.
type Engine struct {
	cfg                 Config
	statefulSetRules    []Rule[*appsv1.StatefulSet]
	statefulSetMutators []Mutator[*appsv1.StatefulSet]
}

// New returns an engine with every built-in rule registered, in the order
// they run, configured by cfg (see DefaultConfig).
func New(cfg Config) *Engine {
	e := &Engine{cfg: cfg}
	e.statefulSetRules = pairingRules()
	e.statefulSetMutators = []Mutator[*appsv1.StatefulSet]{
		passwordSecretRefMutator(&e.cfg),
		terminationGracePeriodMutator(&e.cfg),
		rolloutPartitionMutator(),
	}
	return e
}

// Catalog returns the metadata of every rule and mutator, in the order they
// run. Docs and `stsguard rules` are generated from it.
func (e *Engine) Catalog() []Meta {
	var out []Meta
	for _, r := range e.statefulSetRules {
		out = append(out, r.Meta)
	}
	for _, m := range e.statefulSetMutators {
		out = append(out, m.Meta)
	}
	return out
}

// ValidateStatefulSet runs every validating rule on in.Object and returns the
// findings sorted by field path and rule ID. On UPDATE a Deny finding that
// the old object has too is downgraded to Warn (ratcheting, as Kubernetes
// does for validation that tightens): an existing problem must not block an
// unrelated change such as a scale-down. Lookup failures and rule panics are
// findings of type field.ErrorTypeInternal (see Findings.Internal).
func (e *Engine) ValidateStatefulSet(in *Input[*appsv1.StatefulSet], lk Lookup) Findings {
	if in.Object == nil || in.Object.DeletionTimestamp != nil {
		return nil // being deleted: let finalizers finish
	}
	return validate(e.statefulSetRules, in, lk)
}

// MutateStatefulSet runs every mutator on a copy of in.Object and returns the
// mutation (JSON patch against in.Object, changes, Secrets to write) and the
// mutators' findings. in.Object is not modified. When a mutator reports a
// finding its changes are left out of the mutation.
func (e *Engine) MutateStatefulSet(in *Input[*appsv1.StatefulSet], lk Lookup) (*Mutation, Findings) {
	m := &Mutation{}
	if in.Object == nil || in.Object.DeletionTimestamp != nil {
		return m, nil
	}
	cp := *in
	cp.Object = in.Object.DeepCopy()
	return m, mutate(e.statefulSetMutators, &cp, lk, m)
}

func validate[T any](rules []Rule[T], in *Input[T], lk Lookup) Findings {
	var out Findings
	for i := range rules {
		r := &rules[i]
		errs := safeCheck(r.ID, func() field.ErrorList { return r.Check(in, lk) })
		if len(errs) == 0 {
			continue
		}
		var old field.ErrorList
		if in.Operation == admissionv1.Update && r.Action == Deny {
			oldIn := &Input[T]{Operation: admissionv1.Update, Object: in.OldObject, OldObject: in.OldObject, DryRun: in.DryRun}
			old = safeCheck(r.ID, func() field.ErrorList { return r.Check(oldIn, lk) })
		}
		for _, err := range errs {
			action := r.Action
			if err.Type == field.ErrorTypeInternal {
				action = Warn
				err = withDetail(err, "stsguard could not evaluate this rule, so it did not block the request")
			} else if action == Deny && hasError(old, err) {
				action = Warn
				err = withDetail(err, "(the stored object has this problem already, so this update is allowed)")
			}
			out = append(out, Finding{Rule: r.ID, Action: action, Error: tagged(err, r.ID)})
		}
	}
	out.sort()
	return out
}

func mutate[T any](mutators []Mutator[T], in *Input[T], lk Lookup, m *Mutation) Findings {
	var out Findings
	for i := range mutators {
		mu := &mutators[i]
		var step Mutation
		errs := safeCheck(mu.ID, func() field.ErrorList { return mu.Mutate(in, lk, &step) })
		for _, err := range errs {
			action := mu.FindingAction
			if err.Type == field.ErrorTypeInternal {
				action = Warn
				err = withDetail(err, "stsguard could not apply this default, so the object was left as it was")
			}
			out = append(out, Finding{Rule: mu.ID, Action: action, Error: tagged(err, mu.ID)})
		}
		if len(out.ByAction(Deny)) > 0 {
			continue // a denied request gets no patch and writes nothing
		}
		m.patch = append(m.patch, step.patch...)
		m.changes = append(m.changes, step.changes...)
		m.secrets = append(m.secrets, step.secrets...)
	}
	if len(out.ByAction(Deny)) > 0 {
		*m = Mutation{}
	}
	out.sort()
	return out
}

// safeCheck runs f, turning a panic into an internal finding so that one
// broken rule can never crash the webhook.
func safeCheck(id string, f func() field.ErrorList) (errs field.ErrorList) {
	defer func() {
		if r := recover(); r != nil {
			errs = field.ErrorList{field.InternalError(field.NewPath(""), fmt.Errorf("rule %s panicked: %v", id, r))}
		}
	}()
	return f()
}

func hasError(list field.ErrorList, err *field.Error) bool {
	for _, e := range list {
		if e.Type == err.Type && e.Field == err.Field {
			return true
		}
	}
	return false
}

func withDetail(err *field.Error, more string) *field.Error {
	e := *err
	if e.Detail == "" {
		e.Detail = more
	} else {
		e.Detail += " " + more
	}
	return &e
}
