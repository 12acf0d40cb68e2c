// Package audit evaluates manifests and live objects with the webhook's rule
// engine, as admission CREATE requests would be judged, and reports what
// stsguard would deny, warn about, record for audit and change: the engine
// of `stsguard audit`.
package audit

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/stsguard/stsguard/lookup"
	"github.com/stsguard/stsguard/manifest"
	"github.com/stsguard/stsguard/webhook/rules"
)

// Finding is one thing stsguard would do to one object. Its JSON form is the
// stable output of `stsguard audit -o json`.
type Finding struct {
	// Rule is the rule or mutation ID.
	Rule string `json:"rule"`
	// Action is Deny, Warn, Audit or Mutate.
	Action rules.Action `json:"action"`
	// Kind, Namespace and Name name the object.
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Field is the field path (spec.serviceName).
	Field string `json:"field"`
	// Message says what is wrong (or what would change) and how to fix it,
	// as the webhook would say it, without the trailing "[rule: ID]". It
	// never holds a secret value.
	Message string `json:"message"`
	// File and Line say where the object is written; empty for a live object.
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	// Patch is the JSON patch (RFC 6902) of a Mutate finding; nil otherwise.
	Patch []jsonpatch.JsonPatchOperation `json:"patch,omitempty"`
}

// InputError is a manifest that could not be read.
type InputError struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

// Summary counts the objects and findings of a report.
type Summary struct {
	// Objects is the number of StatefulSets, Services and Secrets judged.
	Objects int `json:"objects"`
	Deny    int `json:"deny"`
	Warn    int `json:"warn"`
	Audit   int `json:"audit"`
	Mutate  int `json:"mutate"`
	// Unchecked is the number of objects of kinds no rule covers (Deployment,
	// ConfigMap, ...; StorageClasses, PVCs and Namespaces are read as
	// context), by kind in UncheckedKinds.
	Unchecked      int            `json:"unchecked"`
	UncheckedKinds map[string]int `json:"uncheckedKinds,omitempty"`
	// Errors is the number of manifests or documents that could not be read.
	Errors int `json:"errors"`
}

// Subject is an object that was judged.
type Subject struct {
	Kind            rules.Kind
	Namespace, Name string
	File            string
	Line            int
}

// Report is the outcome of an audit.
type Report struct {
	// Findings in the order of the objects, then by field path and rule.
	Findings []Finding               `json:"findings"`
	Errors   []InputError            `json:"errors,omitempty"`
	Summary  Summary                 `json:"summary"`
	Subjects []Subject               `json:"-"`
	Catalog  []rules.Meta            `json:"-"`
	Actions  map[string]rules.Action `json:"-"`
}

// Denied reports whether stsguard would deny at least one object.
func (r *Report) Denied() bool { return r.Summary.Deny > 0 }

// Evaluate judges every StatefulSet, Service and Secret of objs as an
// admission CREATE (with dryRun, so that nothing is planned for writing)
// with engine e, resolving references through lk, which must hold objs'
// typed objects (and, for a cluster audit, the cluster's). Each mutating
// kind is mutated first and the mutated object validated, as the webhooks
// do. References resolve to objects as they would be stored: a Service that
// headless-service-default would make headless is headless when a
// StatefulSet looks it up. Objects of other kinds are counted as unchecked.
// The findings of one object are sorted by field path, then rule.
func Evaluate(e *rules.Engine, objs []manifest.Object, lk *lookup.Objects) *Report {
	r := &Report{Findings: []Finding{}, Catalog: rules.Catalog(), Actions: map[string]rules.Action{}}
	for _, o := range objs {
		if svc, ok := o.Object.(*corev1.Service); ok {
			if mutated, m, _ := e.MutateService(&rules.Input[*corev1.Service]{Operation: admissionv1.Create, Object: svc, DryRun: true}, lk); !m.Empty() {
				_ = lk.Add(mutated) // a *corev1.Service is always accepted
			}
		}
	}
	for _, m := range r.Catalog {
		r.Actions[m.ID] = e.Action(m.ID)
	}
	// Judge the objects on every CPU (the engine and a Lookup that is no
	// longer written are safe for concurrent use); report in their order.
	type judged struct {
		subject  *Subject
		findings []Finding
	}
	out := make([]judged, len(objs))
	workers := min(runtime.GOMAXPROCS(0), max(len(objs), 1))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(objs); i += workers {
				out[i].subject, out[i].findings = evaluateOne(e, objs[i], lk)
			}
		})
	}
	wg.Wait()
	for i, j := range out {
		if j.subject == nil {
			if !contextOnly(objs[i]) {
				r.Summary.Unchecked++
				if r.Summary.UncheckedKinds == nil {
					r.Summary.UncheckedKinds = map[string]int{}
				}
				r.Summary.UncheckedKinds[objs[i].GVK.Kind]++
			}
			continue
		}
		r.Summary.Objects++
		r.Subjects = append(r.Subjects, *j.subject)
		for _, f := range j.findings {
			switch f.Action {
			case rules.Deny:
				r.Summary.Deny++
			case rules.Warn:
				r.Summary.Warn++
			case rules.Audit:
				r.Summary.Audit++
			case rules.Mutate:
				r.Summary.Mutate++
			}
		}
		r.Findings = append(r.Findings, j.findings...)
	}
	return r
}

// evaluateOne judges one object; nil for an object of a kind no rule judges.
func evaluateOne(e *rules.Engine, o manifest.Object, lk rules.Lookup) (*Subject, []Finding) {
	var kind rules.Kind
	var res rules.Result
	var changes []rules.Change
	switch v := o.Object.(type) {
	case *appsv1.StatefulSet:
		kind = rules.KindStatefulSet
		res, changes = judge(v, lk, e.MutateStatefulSet, e.ValidateStatefulSet)
	case *corev1.Service:
		kind = rules.KindService
		res, changes = judge(v, lk, e.MutateService, e.ValidateService)
	case *corev1.Secret:
		kind = rules.KindSecret
		res = e.ValidateSecret(&rules.Input[*corev1.Secret]{Operation: admissionv1.Create, Object: v, DryRun: true}, lk)
	default:
		return nil, nil
	}
	fs := make([]Finding, 0, len(res.Findings)+len(changes))
	for _, f := range res.Findings {
		fs = append(fs, Finding{Rule: f.Rule, Action: f.Action, Kind: string(kind), Namespace: o.Namespace, Name: o.Name,
			Field: f.Error.Field, Message: message(f), File: o.File, Line: o.Line})
	}
	for _, c := range changes {
		fs = append(fs, Finding{Rule: c.Rule, Action: rules.Mutate, Kind: string(kind), Namespace: o.Namespace, Name: o.Name,
			Field: c.Field, Message: c.Message, File: o.File, Line: o.Line, Patch: []jsonpatch.JsonPatchOperation{c.Patch}})
	}
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Field != fs[j].Field {
			return fs[i].Field < fs[j].Field
		}
		return fs[i].Rule < fs[j].Rule
	})
	return &Subject{Kind: kind, Namespace: o.Namespace, Name: o.Name, File: o.File, Line: o.Line}, fs
}

// AddErrors records manifests that could not be read.
func (r *Report) AddErrors(errs []error) {
	for _, err := range errs {
		ie := InputError{Message: err.Error()}
		if me, ok := err.(*manifest.Error); ok {
			ie = InputError{File: me.File, Line: me.Line, Message: me.Err.Error()}
		}
		r.Errors = append(r.Errors, ie)
	}
	r.Summary.Errors = len(r.Errors)
}

// contextOnly reports whether o is read only as context for the rules.
func contextOnly(o manifest.Object) bool { return o.Object != nil }

// judge mutates in.Object as the mutating webhook would, then validates the
// mutated object in the world the mutation leaves, as the validating
// webhook would. A mutation denied by a mutator is not validated further.
func judge[T rules.Object](obj T, lk rules.Lookup,
	mutate func(*rules.Input[T], rules.Lookup) (T, *rules.Mutation, rules.Result),
	validate func(*rules.Input[T], rules.Lookup) rules.Result) (rules.Result, []rules.Change) {
	in := &rules.Input[T]{Operation: admissionv1.Create, Object: obj, DryRun: true}
	mutated, m, mres := mutate(in, lk)
	if len(mres.Findings.ByAction(rules.Deny)) > 0 {
		return mres, nil
	}
	vres := validate(&rules.Input[T]{Operation: admissionv1.Create, Object: mutated, DryRun: true}, m.Lookup(lk))
	res := rules.Result{Findings: append(append(rules.Findings{}, mres.Findings...), vres.Findings...),
		Exemptions: append(mres.Exemptions, vres.Exemptions...)}
	if len(vres.Findings.ByAction(rules.Deny)) > 0 {
		return res, nil // a denied request is not patched
	}
	return res, m.Changes()
}

// message is the finding as kubectl prints a field error, less its field
// path and its "[rule: ID]" tag.
func message(f rules.Finding) string {
	return strings.TrimSuffix(f.Error.ErrorBody(), fmt.Sprintf(" [rule: %s]", f.Rule))
}
