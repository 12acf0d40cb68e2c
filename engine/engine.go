package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Engine evaluates the registered rules and mutators under one Config. It is
// immutable and safe for concurrent use; build a new one to change the
// policy.
type Engine struct {
	cfg          Config
	statefulSets kindRules[*appsv1.StatefulSet]
	services     kindRules[*corev1.Service]
	secrets      kindRules[*corev1.Secret]
}

// kindRules are the rules and mutators of one kind, in the order they run.
type kindRules[T Object] struct {
	kind     Kind
	rules    []Rule[T]
	mutators []Mutator[T]
	copy     func(T) T
}

// New returns an engine with every built-in rule registered, configured by
// cfg (start from DefaultConfig). It returns an error when cfg names a rule
// that does not exist, gives a rule an action other than Deny, Warn, Audit
// or Off, turns off something that is not a mutator, or lacks a pattern.
func New(cfg Config) (*Engine, error) {
	if err := checkConfig(&cfg); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg}
	e.register()
	return e, nil
}

func (e *Engine) register() {
	cfg := &e.cfg
	e.statefulSets = kindRules[*appsv1.StatefulSet]{
		kind: KindStatefulSet,
		rules: slices.Concat(pairingRules(), []Rule[*appsv1.StatefulSet]{
			{ID: SecretRefMissing, Check: checkSecretRefMissing},
			{ID: WeakPassword, Check: func(in *Input[*appsv1.StatefulSet], lk Lookup) field.ErrorList {
				return checkStatefulSetWeakPassword(cfg, in, lk)
			}},
		}, storageRules(cfg), expansionRules(), workloadRules(cfg)),
		mutators: []Mutator[*appsv1.StatefulSet]{
			passwordSecretRefMutator(cfg),
			terminationGracePeriodMutator(cfg),
			rolloutPartitionMutator(),
		},
		copy: (*appsv1.StatefulSet).DeepCopy,
	}
	e.services = kindRules[*corev1.Service]{
		kind: KindService, rules: serviceRules(), mutators: serviceMutators(), copy: (*corev1.Service).DeepCopy,
	}
	e.secrets = kindRules[*corev1.Secret]{
		kind: KindSecret, rules: secretRules(cfg), copy: (*corev1.Secret).DeepCopy,
	}
}

func checkConfig(cfg *Config) error {
	var errs []error
	for id, a := range cfg.Actions {
		m, ok := lookupMeta(id)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("unknown rule %q", id))
		case m.Action == Mutate:
			errs = append(errs, fmt.Errorf("%q is a mutation: turn it on or off under mutations, it has no action", id))
		case a != Deny && a != Warn && a != Audit && a != Off:
			errs = append(errs, fmt.Errorf("rule %q: action %q is not one of Deny, Warn, Audit, Off", id, a))
		}
	}
	for id := range cfg.Mutations {
		if m, ok := lookupMeta(id); !ok || m.Action != Mutate {
			errs = append(errs, fmt.Errorf("%q is not a mutation", id))
		}
	}
	for _, ex := range cfg.Exemptions {
		for _, id := range ex.Rules {
			if _, ok := lookupMeta(id); !ok {
				errs = append(errs, fmt.Errorf("exemption names unknown rule %q", id))
			}
		}
	}
	if cfg.CredentialEnv == nil || cfg.CredentialSwitch == nil || cfg.PasswordName == nil || cfg.Rand == nil {
		errs = append(errs, errors.New("CredentialEnv, CredentialSwitch, PasswordName and Rand must be set (start from DefaultConfig)"))
	}
	return errors.Join(errs...)
}

// Catalog returns the metadata of every rule and mutator in documentation
// order, with the kinds each is registered for and its default action.
// `stsguard rules` and docs/rules.md are generated from it.
func Catalog() []Meta {
	e := &Engine{cfg: DefaultConfig()}
	e.register()
	kinds := map[string][]Kind{}
	add := func(id string, k Kind) {
		if !slices.Contains(kinds[id], k) {
			kinds[id] = append(kinds[id], k)
		}
	}
	for _, r := range e.statefulSets.rules {
		add(r.ID, KindStatefulSet)
	}
	for _, m := range e.statefulSets.mutators {
		add(m.ID, KindStatefulSet)
	}
	for _, r := range e.services.rules {
		add(r.ID, KindService)
	}
	for _, m := range e.services.mutators {
		add(m.ID, KindService)
	}
	for _, r := range e.secrets.rules {
		add(r.ID, KindSecret)
	}
	out := make([]Meta, 0, len(catalog))
	for _, m := range catalog {
		m.Kinds = kinds[m.ID]
		if m.ID == ExemptionInvalid {
			m.Kinds = []Kind{KindStatefulSet, KindService, KindSecret}
		}
		out = append(out, m)
	}
	return out
}

// Action returns the action rule id has under the engine's Config (its
// default unless the policy overrides it); Mutate or Off for a mutator.
func (e *Engine) Action(id string) Action {
	m, _ := lookupMeta(id)
	if m.Action == Mutate {
		if e.cfg.mutationOn(id) {
			return Mutate
		}
		return Off
	}
	return e.cfg.action(id, m.Action)
}

// Result is the outcome of evaluating one object.
type Result struct {
	// Findings are the problems found, sorted by field path and rule ID,
	// each with the action that applies to it (Deny, Warn or Audit).
	Findings Findings
	// Exemptions are the exemptions that suppressed at least one finding or
	// change, one per rule.
	Exemptions []Exemption
}

// ValidateStatefulSet runs the StatefulSet rules on in.Object.
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
// keeps it ratcheted and pointing at another bad referent does not; Lookup
// failures and rule panics are Warn findings of type
// field.ErrorTypeInternal (see Findings.Internal), so stsguard fails open.
// An object being deleted (deletionTimestamp set) is not judged.
func (e *Engine) ValidateStatefulSet(in *Input[*appsv1.StatefulSet], lk Lookup) Result {
	return validate(e, &e.statefulSets, in, lk)
}

// ValidateService runs the Service rules on in (CREATE, UPDATE and DELETE,
// whose Service is in.OldObject), as ValidateStatefulSet does.
func (e *Engine) ValidateService(in *Input[*corev1.Service], lk Lookup) Result {
	return validate(e, &e.services, in, lk)
}

// ValidateSecret runs the Secret rules on in (CREATE, UPDATE and DELETE,
// whose Secret is in.OldObject), as ValidateStatefulSet does.
func (e *Engine) ValidateSecret(in *Input[*corev1.Secret], lk Lookup) Result {
	return validate(e, &e.secrets, in, lk)
}

// MutateStatefulSet runs every mutator that is on on a copy of in.Object and
// returns the mutated copy, the mutation (JSON patch against in.Object,
// changes, Secrets to write) and the mutators' findings. in.Object is not
// modified. When a mutator reports a Deny finding the mutation is empty.
// Validate the mutated copy with Mutation.Lookup(lk) to judge the object as
// it would be stored.
func (e *Engine) MutateStatefulSet(in *Input[*appsv1.StatefulSet], lk Lookup) (*appsv1.StatefulSet, *Mutation, Result) {
	return mutate(e, &e.statefulSets, in, lk)
}

// MutateService runs the Service mutators, as MutateStatefulSet does.
func (e *Engine) MutateService(in *Input[*corev1.Service], lk Lookup) (*corev1.Service, *Mutation, Result) {
	return mutate(e, &e.services, in, lk)
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

func validate[T Object](e *Engine, ks *kindRules[T], in *Input[T], lk Lookup) Result {
	var res Result
	if !judged(in) {
		return res
	}
	ex := e.exemptions(in.Subject(), lk)
	views := ratchetViews[T]{in: in}
	for i := range ks.rules {
		r := &ks.rules[i]
		meta, _ := lookupMeta(r.ID)
		def := meta.Action
		if r.Action != "" {
			def = r.Action
		}
		action := e.cfg.action(r.ID, def)
		if action == Off {
			continue
		}
		errs := safeCheck(r.ID, func() field.ErrorList { return r.Check(in, lk) })
		if len(errs) == 0 {
			continue
		}
		if x, ok := ex.exempts(r.ID); ok {
			res.Exemptions = appendExemption(res.Exemptions, x)
			continue
		}
		var stored map[string]bool // keys of the stored object's findings; see findingKey
		if in.Operation == admissionv1.Update && action == Deny {
			// The stored object's problems are those it would have if it
			// were created now: judged as an UPDATE against itself, a rule
			// that speaks only when the pod template changes would find none.
			oldIn := &Input[T]{Operation: admissionv1.Create, Object: in.OldObject}
			old := safeCheck(r.ID, func() field.ErrorList { return r.Check(oldIn, lk) })
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

func mutate[T Object](e *Engine, ks *kindRules[T], in *Input[T], lk Lookup) (T, *Mutation, Result) {
	m := &Mutation{}
	var res Result
	if in.Operation == admissionv1.Delete || !judged(in) {
		return in.Object, m, res
	}
	cp := *in
	cp.Object = ks.copy(in.Object)
	ex := e.exemptions(in.Object, lk)
	recreate := isRecreate(in)
	for i := range ks.mutators {
		mu := &ks.mutators[i]
		if !e.cfg.mutationOn(mu.ID) {
			continue
		}
		x, ok := ex.exempts(mu.ID)
		if !ok && recreate && mu.Default {
			x, ok = recreateExemption(mu.ID, in.Object), true
		}
		if ok {
			// Run it on a scratch copy to learn whether the exemption is used.
			scratch := cp
			scratch.Object = ks.copy(cp.Object)
			var step Mutation
			safeCheck(mu.ID, func() field.ErrorList { return mu.Mutate(&scratch, lk, &step) })
			if !step.Empty() {
				res.Exemptions = appendExemption(res.Exemptions, x)
			}
			continue
		}
		var step Mutation
		errs := safeCheck(mu.ID, func() field.ErrorList { return mu.Mutate(&cp, lk, &step) })
		internal := false
		for _, err := range errs {
			action := mu.FindingAction
			if err.Type == field.ErrorTypeInternal {
				action, internal = Warn, true
				err = withDetail(err, "stsguard could not apply this default, so the object was left as it was")
			}
			res.Findings = append(res.Findings, Finding{Rule: mu.ID, Action: action, Error: tagged(err, mu.ID)})
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
			res.Findings = append(res.Findings, Finding{Rule: mu.ID, Action: Warn, Error: tagged(err, mu.ID)})
		}
		if len(res.Findings.ByAction(Deny)) > 0 {
			continue // a denied request gets no patch and writes nothing
		}
		m.patch = append(m.patch, step.patch...)
		m.changes = append(m.changes, step.changes...)
		m.secrets = append(m.secrets, step.secrets...)
		for range step.secrets {
			m.secretRules = append(m.secretRules, mu.ID)
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
