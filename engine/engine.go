package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Engine evaluates a registry of rules and mutators under one Config. It is
// immutable and safe for concurrent use; build a new one to change the
// policy. Admit decides requests; Catalog, Action and WithoutSecret
// describe the rules and what a failed write leaves.
type Engine struct {
	cfg Config
	// rules are the declarations in catalog order, exemption-invalid last.
	rules        []Rule
	byID         map[string]*Rule
	statefulSets kindRules[*appsv1.StatefulSet]
	services     kindRules[*corev1.Service]
	secrets      kindRules[*corev1.Secret]
}

// kindRules are the checks and changes of one kind, in the order they run
// (the registry's).
type kindRules[T Object] struct {
	checks   []kindCheck[T]
	mutators []kindMutator[T]
	copy     func(T) T
}

type kindCheck[T Object] struct {
	rule  *Rule
	check CheckFunc[T]
}

type kindMutator[T Object] struct {
	rule   *Rule
	mutate MutateFunc[T]
}

// New returns an engine that runs the declarations of registry (in their
// order; rules.All is stsguard's catalog) configured by cfg (start from
// DefaultConfig). It returns an error when a declaration is malformed (an
// ID declared twice or not kebab-case, no description, a rule with no
// check, a mutator with a check or without a FindingAction, an action that
// is not Deny, Warn, Audit or Mutate), or when cfg
// names a rule that does not exist, gives a rule an action other than
// Deny, Warn, Audit or Off, turns off something that is not a mutator, or
// lacks a pattern.
func New(cfg Config, registry []Rule) (*Engine, error) {
	e := &Engine{cfg: cfg, byID: map[string]*Rule{}}
	e.rules = append(append(make([]Rule, 0, len(registry)+1), registry...), exemptionInvalid)
	var errs []error
	for i := range e.rules {
		r := &e.rules[i]
		if err := checkDeclaration(r); err != nil {
			errs = append(errs, err)
		}
		if _, dup := e.byID[r.ID]; dup {
			errs = append(errs, fmt.Errorf("rule %q is declared twice", r.ID))
		}
		e.byID[r.ID] = r
		if r.StatefulSet != nil {
			e.statefulSets.checks = append(e.statefulSets.checks, kindCheck[*appsv1.StatefulSet]{r, r.StatefulSet})
		}
		if r.Service != nil {
			e.services.checks = append(e.services.checks, kindCheck[*corev1.Service]{r, r.Service})
		}
		if r.Secret != nil {
			e.secrets.checks = append(e.secrets.checks, kindCheck[*corev1.Secret]{r, r.Secret})
		}
		if r.MutateStatefulSet != nil {
			e.statefulSets.mutators = append(e.statefulSets.mutators, kindMutator[*appsv1.StatefulSet]{r, r.MutateStatefulSet})
		}
		if r.MutateService != nil {
			e.services.mutators = append(e.services.mutators, kindMutator[*corev1.Service]{r, r.MutateService})
		}
	}
	e.statefulSets.copy = (*appsv1.StatefulSet).DeepCopy
	e.services.copy = (*corev1.Service).DeepCopy
	e.secrets.copy = (*corev1.Secret).DeepCopy
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("rule registry: %w", err)
	}
	if err := e.checkConfig(); err != nil {
		return nil, err
	}
	return e, nil
}

var kebabCase = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// checkDeclaration reports what is malformed in one declaration.
func checkDeclaration(r *Rule) error {
	checks := r.StatefulSet != nil || r.Service != nil || r.Secret != nil
	mutates := r.MutateStatefulSet != nil || r.MutateService != nil
	switch {
	case !kebabCase.MatchString(r.ID):
		return fmt.Errorf("rule ID %q is not kebab-case", r.ID)
	case r.Description == "":
		return fmt.Errorf("rule %q has no description", r.ID)
	case r.Action == Mutate && (checks || !mutates):
		return fmt.Errorf("mutator %q must declare changes and no checks", r.ID)
	case r.Action != Mutate && (mutates || (!checks && r.ID != ExemptionInvalid)):
		return fmt.Errorf("rule %q must declare checks and no changes", r.ID)
	case r.Action != Mutate && r.Action != Deny && r.Action != Warn && r.Action != Audit:
		return fmt.Errorf("rule %q: default action %q is not one of Deny, Warn, Audit, Mutate", r.ID, r.Action)
	case r.Action != Mutate && (r.FindingAction != "" || r.Default || r.SecretNotWritten != nil):
		return fmt.Errorf("rule %q: FindingAction, Default and SecretNotWritten are a mutator's", r.ID)
	case r.Action == Mutate && r.FindingAction != Deny && r.FindingAction != Warn && r.FindingAction != Audit:
		return fmt.Errorf("mutator %q: FindingAction %q is not one of Deny, Warn, Audit", r.ID, r.FindingAction)
	case r.ActionOnUpdate != "" && (r.Action == Mutate || r.ActionOnUpdate != Deny && r.ActionOnUpdate != Warn && r.ActionOnUpdate != Audit):
		return fmt.Errorf("rule %q: ActionOnUpdate %q must be Deny, Warn or Audit, on a rule that is not a mutator", r.ID, r.ActionOnUpdate)
	}
	return nil
}

func (e *Engine) checkConfig() error {
	cfg := &e.cfg
	var errs []error
	for id, a := range cfg.Actions {
		r, ok := e.byID[id]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("unknown rule %q", id))
		case r.isMutator():
			errs = append(errs, fmt.Errorf("%q is a mutation: turn it on or off under mutations, it has no action", id))
		case a != Deny && a != Warn && a != Audit && a != Off:
			errs = append(errs, fmt.Errorf("rule %q: action %q is not one of Deny, Warn, Audit, Off", id, a))
		}
	}
	for id := range cfg.Mutations {
		if r, ok := e.byID[id]; !ok || !r.isMutator() {
			errs = append(errs, fmt.Errorf("%q is not a mutation", id))
		}
	}
	for _, ex := range cfg.Exemptions {
		for _, id := range ex.Rules {
			if _, ok := e.byID[id]; !ok {
				errs = append(errs, fmt.Errorf("exemption names unknown rule %q", id))
			}
		}
	}
	if cfg.Credentials.CredentialEnv == nil || cfg.Credentials.CredentialSwitch == nil || cfg.Credentials.PasswordName == nil || cfg.Rand == nil {
		errs = append(errs, errors.New("CredentialEnv, CredentialSwitch, PasswordName and Rand must be set (start from DefaultConfig)"))
	}
	return errors.Join(errs...)
}

// Catalog returns the catalog entry of every rule and mutator the engine
// runs, in documentation order (the registry's, exemption-invalid last),
// with the kinds each judges and its default action. `stsguard rules` and
// docs/rules.md are generated from it.
func (e *Engine) Catalog() []Meta {
	out := make([]Meta, 0, len(e.rules))
	for i := range e.rules {
		out = append(out, e.rules[i].Meta())
	}
	return out
}

// known reports whether id is the ID of a rule or mutator of the engine.
func (e *Engine) known(id string) bool { _, ok := e.byID[id]; return ok }

// Action returns the action rule id has under the engine's Config (its
// default unless the policy overrides it); Mutate or Off for a mutator; ""
// for an unknown ID.
func (e *Engine) Action(id string) Action {
	r, ok := e.byID[id]
	switch {
	case !ok:
		return ""
	case r.isMutator() && e.cfg.mutationOn(id):
		return Mutate
	case r.isMutator():
		return Off
	}
	return e.cfg.action(id, r.Action)
}

// Result is the outcome of one step (the mutators, or the checks) on one
// object.
type Result struct {
	// Findings are the problems found, sorted by field path and rule ID,
	// each with the action that applies to it (Deny, Warn or Audit).
	Findings Findings
	// Exemptions are the exemptions that suppressed at least one finding or
	// change, one per rule.
	Exemptions []Exemption
}

// judged reports whether the engine evaluates the request at all: it carries
// its subject and the subject is not being deleted by a finalizer-driven
// UPDATE.
func judged[T Object](in *Input[T]) bool {
	var zero T
	s := in.Subject()
	if s == zero {
		return false
	}
	return in.Operation == admissionv1.Delete || s.GetDeletionTimestamp() == nil
}

// validate runs the checks of kind ks on in.Subject() (in.Object, or
// in.OldObject on DELETE), under the contract Admit documents.
func validate[T Object](ctx context.Context, e *Engine, ks *kindRules[T], in *Input[T], lk Lookup) Result {
	var res Result
	if !judged(in) {
		return res
	}
	ex := e.exemptions(ctx, in.Subject(), lk)
	views := ratchetViews[T]{in: in}
	for i := range ks.checks {
		c := &ks.checks[i]
		r := c.rule
		def := r.Action
		if r.ActionOnUpdate != "" && in.Operation == admissionv1.Update {
			def = r.ActionOnUpdate
		}
		action := e.cfg.action(r.ID, def)
		if action == Off {
			continue
		}
		errs := safeCheck(r.ID, func() field.ErrorList { return c.check(ctx, in, lk) })
		if len(errs) == 0 {
			continue
		}
		if x, ok := ex.exempts(r.ID); ok {
			res.Exemptions = appendExemption(res.Exemptions, x)
			continue
		}
		var stored map[string]bool // keys of the stored object's findings; see findingKey
		if in.Operation == admissionv1.Update && action == Deny && r.ActionOnUpdate == "" {
			// The stored object's problems are those it would have if it
			// were created now: judged as an UPDATE against itself, a rule
			// that speaks only when the pod template changes would find none.
			oldIn := &Input[T]{Operation: admissionv1.Create, Object: in.OldObject, Config: in.Config}
			old := safeCheck(r.ID, func() field.ErrorList { return c.check(ctx, oldIn, lk) })
			stored = make(map[string]bool, len(old))
			for _, err := range old {
				stored[findingKey(views.old(), Finding{Rule: r.ID, Error: err})] = true
			}
		}
		for _, err := range errs {
			a := action
			if err.Type == field.ErrorTypeInternal {
				a = Warn
				err = withDetail(err, "stsguard could not evaluate this rule, so it did not block the request")
			} else if a == Deny && stored[findingKey(views.new(), Finding{Rule: r.ID, Error: err})] {
				a = Warn
				err = withDetail(err, "(the stored object has this problem already, so this update is allowed)")
			}
			res.Findings = append(res.Findings, Finding{Rule: r.ID, Action: a, Error: tagged(err, r.ID)})
		}
	}
	if a := e.cfg.action(ExemptionInvalid, Warn); a != Off {
		for _, err := range ex.problems {
			if err.Type == field.ErrorTypeInternal {
				res.Findings = append(res.Findings, Finding{Rule: ExemptionInvalid, Action: Warn, Error: tagged(err, ExemptionInvalid)})
				continue
			}
			res.Findings = append(res.Findings, Finding{Rule: ExemptionInvalid, Action: a, Error: tagged(err, ExemptionInvalid)})
		}
	}
	res.Findings.sort()
	return res
}

// mutate runs every mutator of kind ks that is on on a copy of in.Object
// and returns the mutated copy, the mutation (JSON patch against in.Object,
// changes, Secrets to write) and the mutators' findings. in.Object is not
// modified. When a mutator reports a Deny finding the mutation is empty.
func mutate[T Object](ctx context.Context, e *Engine, ks *kindRules[T], in *Input[T], lk Lookup) (T, *Mutation, Result) {
	m := &Mutation{}
	var res Result
	if len(ks.mutators) == 0 || in.Operation == admissionv1.Delete || !judged(in) {
		return in.Object, m, res
	}
	cp := *in
	cp.Object = ks.copy(in.Object)
	ex := e.exemptions(ctx, in.Object, lk)
	recreate := IsRecreate(in)
	for i := range ks.mutators {
		mu := &ks.mutators[i]
		r := mu.rule
		if !e.cfg.mutationOn(r.ID) {
			continue
		}
		x, ok := ex.exempts(r.ID)
		if !ok && recreate && r.Default {
			x, ok = recreateExemption(r.ID, in.Object), true
		}
		if ok {
			// Run it on a scratch copy to learn whether the exemption is used.
			scratch := cp
			scratch.Object = ks.copy(cp.Object)
			var step Mutation
			safeCheck(r.ID, func() field.ErrorList { return mu.mutate(ctx, &scratch, lk, &step) })
			if !step.Empty() {
				res.Exemptions = appendExemption(res.Exemptions, x)
			}
			continue
		}
		var step Mutation
		errs := safeCheck(r.ID, func() field.ErrorList { return mu.mutate(ctx, &cp, lk, &step) })
		internal := false
		for _, err := range errs {
			action := r.FindingAction
			if err.Type == field.ErrorTypeInternal {
				action, internal = Warn, true
				err = withDetail(err, "stsguard could not apply this default, so the object was left as it was")
			}
			res.Findings = append(res.Findings, Finding{Rule: r.ID, Action: action, Error: tagged(err, r.ID)})
		}
		if internal {
			// As the finding says: none of this mutator's changes, neither
			// in the patch nor in the object judged next.
			if obj, err := patched(in.Object, m.patch); err == nil {
				cp.Object = obj
			}
			continue
		}
		for _, err := range step.warnings {
			res.Findings = append(res.Findings, Finding{Rule: r.ID, Action: Warn, Error: tagged(err, r.ID)})
		}
		if len(res.Findings.ByAction(Deny)) > 0 {
			continue // a denied request gets no patch and writes nothing
		}
		m.patch = append(m.patch, step.patch...)
		m.changes = append(m.changes, step.changes...)
		for _, sr := range step.secrets {
			sr.Rule = r.ID
			m.secrets = append(m.secrets, sr)
		}
	}
	if len(res.Findings.ByAction(Deny)) > 0 {
		*m = Mutation{}
		cp.Object = in.Object
	}
	res.Findings.sort()
	return cp.Object, m, res
}

// patched returns a new object: obj with the JSON patch ops applied, as the
// apiserver applies a mutating webhook's patch. It is used only after a
// mutator failed midway, to go back to the object the mutators before it
// left.
func patched[T Object](obj T, ops []jsonpatch.JsonPatchOperation) (T, error) {
	var zero T
	doc, err := json.Marshal(obj)
	if err != nil {
		return zero, err
	}
	if len(ops) > 0 {
		raw, err := json.Marshal(ops)
		if err != nil {
			return zero, err
		}
		p, err := jsonpatchapply.DecodePatch(raw)
		if err != nil {
			return zero, err
		}
		if doc, err = p.Apply(doc); err != nil {
			return zero, err
		}
	}
	out := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(T)
	return out, json.Unmarshal(doc, out)
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

// ratchetViews are the two objects of an UPDATE as findingKey reads them,
// each converted at most once per request.
type ratchetViews[T Object] struct {
	in               *Input[T]
	objView, oldView *ratchetView
}

func (v *ratchetViews[T]) new() *ratchetView {
	if v.objView == nil {
		v.objView = newRatchetView(v.in.Object)
	}
	return v.objView
}

func (v *ratchetViews[T]) old() *ratchetView {
	if v.oldView == nil {
		v.oldView = newRatchetView(v.in.OldObject)
	}
	return v.oldView
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
