package audit

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/kinds"
	"github.com/stsguard/stsguard/manifest"
	"github.com/stsguard/stsguard/rules"
)

// Finding is one thing stsguard would do to one object. Its JSON form is the
// stable output of `stsguard audit -o json`.
type Finding struct {
	// Rule is the rule or mutation ID.
	Rule string `json:"rule"`
	// Action is Deny, Warn, Audit or Mutate.
	Action engine.Action `json:"action"`
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
	// Hint is what audit adds to the webhook's message when the finding
	// comes from the order the objects are applied in: a Service created
	// before the StatefulSet that names it (headless-service-not-headless),
	// or created further down in the input (headless-service-missing); it
	// names that Service and where it is written. Empty otherwise.
	Hint string `json:"hint,omitempty"`
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
	// Denied is the number of those objects the webhooks would deny.
	Denied int `json:"denied"`
	// Deny, Warn, Audit and Mutate count the findings by action.
	Deny   int `json:"deny"`
	Warn   int `json:"warn"`
	Audit  int `json:"audit"`
	Mutate int `json:"mutate"`
	// Unchecked is the number of objects of kinds no rule covers (Deployment,
	// ConfigMap, ...; StorageClasses, PVCs and Namespaces are read as
	// context), by kind in UncheckedKinds.
	Unchecked      int            `json:"unchecked"`
	UncheckedKinds map[string]int `json:"uncheckedKinds,omitempty"`
	// Errors is the number of manifests or documents that could not be read.
	Errors int `json:"errors"`
}

// Decision is what the apiserver, through stsguard's mutating and then
// validating webhook, would do with one StatefulSet, Service or Secret.
// Report.Objects lists them in the order the objects are applied.
type Decision struct {
	// Kind, Namespace and Name name the object; File and Line say where it
	// is written (empty for a live object).
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	File      string `json:"file,omitempty"`
	Line      int    `json:"line,omitempty"`
	// Operation is the admission operation: CREATE, or UPDATE when an
	// object of the same kind, namespace and name exists already (earlier
	// in the files, live with --cluster, or the Secret password-secret-ref
	// wrote), which kubectl apply patches.
	Operation admissionv1.Operation `json:"operation"`
	// Denied is true when the request would be refused (a Deny finding):
	// the object is not stored, and later objects do not see it.
	Denied bool `json:"denied"`
	// Deny, Warn and Audit are the IDs of the rules with a finding of that
	// action (the rules kubectl prints in the error and in its "Warning:"
	// lines as "[rule: ID]"), sorted, each once.
	Deny  []string `json:"deny,omitempty"`
	Warn  []string `json:"warn,omitempty"`
	Audit []string `json:"audit,omitempty"`
	// Mutations are the IDs of the mutations applied (each once, sorted;
	// none when denied), and Patch the JSON patch the mutating webhook
	// returns, in the order it applies.
	Mutations []string                       `json:"mutations,omitempty"`
	Patch     []jsonpatch.JsonPatchOperation `json:"patch,omitempty"`
	// Secrets are the Secrets password-secret-ref writes for the object
	// (created, or given keys), which exist for the objects after it.
	Secrets []SecretWrite `json:"secrets,omitempty"`

	// findings are this object's entries of Report.Findings: [first, end).
	first, end int
}

// SecretWrite is a Secret stsguard writes while it admits an object.
type SecretWrite struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Create is true for a new Secret, false for keys added to a Secret
	// stsguard manages.
	Create bool `json:"create"`
	// Keys are the keys written (never the values).
	Keys []string `json:"keys"`
}

// Report is the outcome of an audit.
type Report struct {
	// Objects are the decisions, in the order the objects are applied.
	Objects []Decision `json:"objects"`
	// Findings in the order of the objects, then by field path and rule.
	Findings []Finding                `json:"findings"`
	Errors   []InputError             `json:"errors,omitempty"`
	Summary  Summary                  `json:"summary"`
	Catalog  []engine.Meta            `json:"-"`
	Actions  map[string]engine.Action `json:"-"`
}

// Denied reports whether stsguard would deny at least one object.
func (r *Report) Denied() bool { return r.Summary.Deny > 0 }

// FindingsOf returns the findings of the object d (an element of r.Objects).
func (r *Report) FindingsOf(d *Decision) []Finding { return r.Findings[d.first:d.end] }

// outcome is what one object's admission produced.
type outcome struct {
	decision Decision
	findings []Finding
}

// apply replays the objects of entries, in order, as `kubectl apply -f`
// sends them to the apiserver, and reports each StatefulSet, Service and
// Secret as stsguard's webhooks would decide on it. existing are the
// objects stored before the first entry (the live objects, with --cluster),
// nil for an empty cluster.
//
// Each object is one admission request judged against what is stored at
// that point: the existing objects and the earlier objects that were
// admitted, as admitted:
//   - a denied object is not stored;
//   - a StatefulSet is stored as mutated, and the Secret password-secret-ref
//     writes for it exists from then on;
//   - a Service is stored as mutated and defaulted by the apiserver: one
//     created without clusterIP that headless-service-default leaves alone
//     gets a cluster IP (stored as clusterIP "" with type ClusterIP, since
//     audit cannot know the address);
//   - an object of the same kind, namespace and name as a stored one is an
//     UPDATE of it, with the object kubectl apply would send: the three-way
//     strategic merge of the configuration applied last (the earlier
//     manifest, or the live object's kubectl.kubernetes.io/last-applied-
//     configuration), the manifest and the stored object. A Service keeps
//     its cluster IP, which cannot change.
//
// StorageClasses, PersistentVolumeClaims and Namespaces are stored at their
// place, unjudged; objects of other kinds are counted as unchecked. The
// apiserver's own validation, and the namespace's existence, are not
// replayed.
//
// Each namespace is replayed by one goroutine (rules read only the
// namespace of the object they judge; cluster-scoped objects are seen from
// their place on), so the decisions are those of the sequential replay.
//
// The entries are those of manifest.Read: it returns the report, with the
// errors of the entries and of decoding their deferred objects (in entry
// order) for Report.AddErrors. A deferred object is decoded
// (manifest.Entry.Decode) by the task that replays its namespace, just
// before its replay, and what the replay of a namespace stored is dropped
// once it is done, so that at most GOMAXPROCS namespaces' typed objects
// (besides existing and the cluster-scoped objects) are in memory at once.
// It consumes entries: each deferred entry is decoded, and its JSON
// dropped, once; call it once per manifest.Read.
func apply(e *engine.Engine, entries []manifest.Entry, existing []manifest.Object) (*Report, []error) {
	w := newWorld()
	for _, o := range existing {
		if o.Object != nil && !w.addCluster(o.Object, -1) {
			w.ns(o.Namespace).put(o.Object, nil)
		}
	}
	var order []string
	groups := map[string][]int{}
	var unchecked map[string]int
	for i := range entries {
		en := &entries[i]
		if en.Err != nil {
			continue
		}
		if !en.Deferred() {
			if en.Object.Object == nil {
				if unchecked == nil {
					unchecked = map[string]int{}
				}
				unchecked[en.GVK.Kind]++
				continue
			}
			if w.addCluster(en.Object.Object, i) {
				continue
			}
		}
		if _, ok := groups[en.Namespace]; !ok {
			order = append(order, en.Namespace)
			w.ns(en.Namespace) // created now: the goroutines only read the map
		}
		groups[en.Namespace] = append(groups[en.Namespace], i)
		if en.GVK.Group == "" && en.GVK.Kind == string(kinds.Service) {
			w.namespaces[en.Namespace].plan(en.Object, i)
		}
	}
	out := make([]*outcome, len(entries))
	decodeErrs := make([]error, len(entries))
	g := workers()
	for _, ns := range order {
		g.Go(func() error {
			s := w.namespaces[ns]
			for _, i := range groups[ns] {
				o, err := entries[i].Decode()
				if err != nil {
					decodeErrs[i] = err
					continue
				}
				out[i] = replay(e, &view{w: w, s: s, namespace: ns, pos: i}, &o)
			}
			*s = store{} // no other task reads it; the decisions hold no object
			return nil
		})
	}
	_ = g.Wait() // the work returns no error
	var errs []error
	for i := range entries {
		if err := entries[i].Err; err != nil {
			errs = append(errs, err)
		} else if err := decodeErrs[i]; err != nil {
			errs = append(errs, err)
		}
	}
	r := report(e, out)
	countUnchecked(r, unchecked)
	return r, errs
}

// Live judges live objects: each StatefulSet, Service and Secret of objs as
// an admission CREATE of it would be judged in the world of all of them
// (itself included, as stored), so that each finding says what stsguard
// would do with the object if it were created now. Nothing is stored, so
// the order does not matter and the objects are judged in parallel. A live
// Service always has its cluster IP (or None), so headless-service-default
// never applies to one.
func Live(e *engine.Engine, objs []manifest.Object) *Report {
	w := newWorld()
	for _, o := range objs {
		if o.Object != nil && !w.addCluster(o.Object, -1) {
			w.ns(o.Namespace).put(o.Object, nil)
		}
	}
	out := make([]*outcome, len(objs))
	g := workers()
	for start := 0; start < len(objs); start += liveBatch {
		g.Go(func() error {
			for i := start; i < min(start+liveBatch, len(objs)); i++ {
				o := &objs[i]
				if s, ok := w.namespaces[o.Namespace]; ok {
					out[i] = judgeLive(e, &view{w: w, s: s, namespace: o.Namespace, pos: math.MaxInt}, o)
				}
			}
			return nil
		})
	}
	_ = g.Wait() // the work returns no error
	r := report(e, out)
	var unchecked map[string]int
	for _, o := range objs {
		if o.Object == nil {
			if unchecked == nil {
				unchecked = map[string]int{}
			}
			unchecked[o.GVK.Kind]++
		}
	}
	countUnchecked(r, unchecked)
	return r
}

// liveBatch is how many live objects one task of Live judges: enough to
// make a task's cost dwarf its scheduling.
const liveBatch = 256

// workers returns an errgroup that runs at most GOMAXPROCS tasks at once.
func workers() *errgroup.Group {
	g := &errgroup.Group{}
	g.SetLimit(runtime.GOMAXPROCS(0))
	return g
}

// report assembles the outcomes (nil for an object not judged), in order.
func report(e *engine.Engine, out []*outcome) *Report {
	r := &Report{Objects: []Decision{}, Findings: []Finding{}, Catalog: e.Catalog(), Actions: map[string]engine.Action{}}
	for _, m := range r.Catalog {
		r.Actions[m.ID] = e.Action(m.ID)
	}
	for _, oc := range out {
		if oc == nil {
			continue
		}
		r.Summary.Objects++
		if oc.decision.Denied {
			r.Summary.Denied++
		}
		for _, f := range oc.findings {
			switch f.Action {
			case engine.Deny:
				r.Summary.Deny++
			case engine.Warn:
				r.Summary.Warn++
			case engine.Audit:
				r.Summary.Audit++
			case engine.Mutate:
				r.Summary.Mutate++
			}
		}
		d := oc.decision
		d.first = len(r.Findings)
		r.Findings = append(r.Findings, oc.findings...)
		d.end = len(r.Findings)
		r.Objects = append(r.Objects, d)
	}
	return r
}

// countUnchecked records the objects of kinds stsguard does not read, by
// kind (nil for none).
func countUnchecked(r *Report, byKind map[string]int) {
	for k, n := range byKind {
		r.Summary.Unchecked += n
		if r.Summary.UncheckedKinds == nil {
			r.Summary.UncheckedKinds = map[string]int{}
		}
		r.Summary.UncheckedKinds[k] += n
	}
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

// replay admits the object o at v's position, as the apiserver would with
// stsguard's webhooks, and stores what would be stored. It returns nil for
// an object that is only stored (a PersistentVolumeClaim).
func replay(e *engine.Engine, v *view, o *manifest.Object) *outcome {
	s := v.s
	switch obj := o.Object.(type) {
	case *appsv1.StatefulSet:
		var prev *stored[*appsv1.StatefulSet]
		if st, ok := s.statefulSets[obj.Name]; ok {
			prev = st
		}
		in := request(obj, prev, o)
		a := admit(e, in, v)
		oc := a.outcome(kinds.StatefulSet, o)
		hintServiceOrder(oc, s, in.Object)
		hintServiceLater(oc, s, in.Object, v.pos)
		if !a.denied {
			s.put(a.object, o)
			oc.decision.Secrets = storeSecrets(s, v, a.mutation)
		}
		return oc
	case *corev1.Service:
		prev := s.services[obj.Name]
		in := request(obj, prev, o)
		a := admit(e, in, v)
		oc := a.outcome(kinds.Service, o)
		if a.denied {
			return oc
		}
		svc := a.object
		allocated := false
		if prev == nil {
			// What the apiserver does on create: default the type and
			// allocate a cluster IP to a Service that is not headless.
			if svc.Spec.Type == "" {
				svc = svc.DeepCopy() // the manifest's object, or the mutation's
				svc.Spec.Type = corev1.ServiceTypeClusterIP
			}
			allocated = svc.Spec.ClusterIP == "" && svc.Spec.Type != corev1.ServiceTypeExternalName
		} else {
			allocated = prev.allocated
		}
		s.services[svc.Name] = &stored[*corev1.Service]{obj: svc, applied: o, allocated: allocated}
		return oc
	case *corev1.Secret:
		prev := s.secrets[obj.Name]
		in := request(obj, prev, o)
		a := admit(e, in, v)
		oc := a.outcome(kinds.Secret, o)
		if !a.denied {
			s.put(in.Object, o)
		}
		return oc
	case *corev1.PersistentVolumeClaim:
		s.put(obj, o)
	}
	return nil
}

// hintServiceOrder adds a Hint to the headless-service-not-headless
// finding of StatefulSet sts when its Service, of type ClusterIP, was
// created earlier in the replay without a clusterIP: the denial comes from
// the order (created after the StatefulSet, headless-service-default would
// have made it headless), which the webhook's message does not say.
func hintServiceOrder(oc *outcome, s *store, sts *appsv1.StatefulSet) {
	svc, ok := s.services[sts.Spec.ServiceName]
	if !ok || !svc.allocated || svc.applied == nil || svc.obj.Spec.Type != corev1.ServiceTypeClusterIP {
		return // not a Service headless-service-default would have made headless
	}
	for i := range oc.findings {
		f := &oc.findings[i]
		if f.Rule != rules.HeadlessServiceNotHeadless || f.Field != "spec.serviceName" {
			continue
		}
		f.Hint = fmt.Sprintf("Service %q (%s) is created before this StatefulSet and sets no clusterIP, so the apiserver gives it a cluster IP; "+
			"headless-service-default makes a Service headless only when a StatefulSet that names it exists already. "+
			"Set spec.clusterIP: None in the Service's manifest (Helm and kustomize, too, create Services before StatefulSets)",
			svc.obj.Name, location(svc.applied.File, svc.applied.Line))
	}
}

// hintServiceLater adds a Hint to the headless-service-missing finding of
// StatefulSet sts, at position pos of the replay, when the input creates
// the Service it names further down: kubectl apply -f creates the
// StatefulSet first, so the warning is right, but the webhook's message
// cannot say that the Service follows, or where it is written.
func hintServiceLater(oc *outcome, s *store, sts *appsv1.StatefulSet, pos int) {
	svc, ok := s.plannedAfter(sts.Spec.ServiceName, pos)
	if !ok {
		return
	}
	for i := range oc.findings {
		f := &oc.findings[i]
		if f.Rule != rules.HeadlessServiceMissing || f.Field != "spec.serviceName" {
			continue
		}
		f.Hint = fmt.Sprintf("Service %q (%s) is created further down in this input, after this StatefulSet: "+
			"its pods get stable DNS names once that Service exists (headless-service-default makes it headless if it sets no clusterIP); "+
			"to create it first, put it before the StatefulSet with spec.clusterIP: None",
			svc.Name, location(svc.File, svc.Line))
	}
}

// location renders file:line ("file" alone when the line is unknown).
func location(file string, line int) string {
	if line > 0 {
		return fmt.Sprintf("%s:%d", file, line)
	}
	return file
}

// judgeLive judges the live object o as an admission CREATE of it, storing
// nothing.
func judgeLive(e *engine.Engine, v *view, o *manifest.Object) *outcome {
	oc, err := judgeStored(context.Background(), e, engine.MutateAndValidate, v, o)
	if err != nil {
		panic("audit: " + err.Error()) // audit builds only requests of the kinds the engine admits
	}
	return oc
}

// Judge judges one stored StatefulSet, Service or Secret (as read from the
// apiserver, or from an informer cache) as `stsguard audit --cluster`
// judges each live object: as an admission CREATE of it at phase, in the
// world lk reads, through engine.Admit. It does not modify obj: a
// StatefulSet whose volumeClaimTemplates lack what the apiserver sets is
// copied before it is defaulted (see defaultClaimTemplates). ok is false
// for an object no webhook request carries: a kind the rules do not judge,
// a Helm release record or a service account token Secret (the webhooks'
// matchConditions, and LoadCluster, leave those out). The findings are
// rendered and sorted as in a Report, without File and Line; the
// decision's Mutations and Patch are empty at phase Validating. err is
// Admit's, for a request it cannot judge, or ctx's.
func Judge(ctx context.Context, e *engine.Engine, phase engine.Phase, obj client.Object, lk engine.Lookup) (d Decision, findings []Finding, ok bool, err error) {
	if sec, isSecret := obj.(*corev1.Secret); isSecret && !secretSelector.Matches(fields.Set{"type": string(sec.Type)}) {
		return Decision{}, nil, false, nil
	}
	if sts, isSTS := obj.(*appsv1.StatefulSet); isSTS && needsClaimDefaults(sts) {
		sts = sts.DeepCopy()
		defaultClaimTemplates(sts)
		obj = sts
	}
	oc, err := judgeStored(ctx, e, phase, lk, &manifest.Object{Object: obj, Namespace: obj.GetNamespace(), Name: obj.GetName()})
	if err != nil || oc == nil {
		return Decision{}, nil, false, err
	}
	return oc.decision, oc.findings, true, nil
}

// judgeStored judges the stored object o as an admission CREATE of it at
// phase; nil for a kind the rules do not judge.
func judgeStored(ctx context.Context, e *engine.Engine, phase engine.Phase, lk engine.Lookup, o *manifest.Object) (*outcome, error) {
	switch obj := o.Object.(type) {
	case *appsv1.StatefulSet:
		a, err := admitAt(ctx, e, phase, &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Create, Object: obj}, lk)
		return a.outcome(kinds.StatefulSet, o), err
	case *corev1.Service:
		a, err := admitAt(ctx, e, phase, &engine.Input[*corev1.Service]{Operation: admissionv1.Create, Object: obj}, lk)
		return a.outcome(kinds.Service, o), err
	case *corev1.Secret:
		a, err := admitAt(ctx, e, phase, &engine.Input[*corev1.Secret]{Operation: admissionv1.Create, Object: obj}, lk)
		return a.outcome(kinds.Secret, o), err
	}
	return nil, nil
}

// request is the admission request for manifest object obj (o's object):
// a CREATE, or, when prev is stored under its name, an UPDATE of prev.Obj
// with the object kubectl apply would send (see merge).
func request[T object](obj T, prev *stored[T], o *manifest.Object) *engine.Input[T] {
	in := &engine.Input[T]{Operation: admissionv1.Create, Object: obj.DeepCopyObject().(T)}
	if prev != nil {
		in = &engine.Input[T]{Operation: admissionv1.Update, Object: merge(prev, obj), OldObject: prev.obj}
	}
	if sts, ok := any(in.Object).(*appsv1.StatefulSet); ok {
		defaultClaimTemplates(sts)
	}
	return in
}

// admitted is the result of one request through both webhooks.
type admitted[T engine.Object] struct {
	operation admissionv1.Operation
	res       engine.Result
	// object is the object as it would be stored (mutated); mutation is
	// nil when nothing changes or the request is denied.
	object   T
	mutation *engine.Mutation
	denied   bool
}

// admit sends in, unless the webhooks' matchCondition skips it (sent),
// through engine.Admit at phase MutateAndValidate: the mutating webhook
// and then the validating webhook, as the apiserver does. A request either
// step would deny gets no patch and writes nothing. The findings are those
// kubectl shows: the mutators' and the validating rules'.
func admit[T engine.Object](e *engine.Engine, in *engine.Input[T], lk engine.Lookup) admitted[T] {
	// The replay's Lookup is in memory: nothing to cancel.
	a, err := admitAt(context.Background(), e, engine.MutateAndValidate, in, lk)
	if err != nil {
		panic("audit: " + err.Error()) // audit builds only requests of the kinds the engine admits
	}
	return a
}

// admitAt is admit at phase, with ctx for lk's reads; it returns Admit's
// error for a request it cannot judge.
func admitAt[T engine.Object](ctx context.Context, e *engine.Engine, phase engine.Phase, in *engine.Input[T], lk engine.Lookup) (admitted[T], error) {
	if !sent(in) {
		return admitted[T]{operation: in.Operation, object: in.Object}, nil
	}
	r := engine.NewRequest(phase, in)
	d, err := e.Admit(ctx, r, lk)
	if err != nil {
		return admitted[T]{operation: in.Operation, object: in.Object}, err
	}
	a := admitted[T]{operation: in.Operation, res: engine.Result{Findings: d.Findings, Exemptions: d.Exemptions},
		object: in.Object, denied: d.Denied()}
	if obj, ok := d.Object.(T); ok && !a.denied {
		a.object = obj
	}
	if !a.denied && !d.Mutation.Empty() {
		a.mutation = d.Mutation
	}
	return a, nil
}

// outcome renders the result for the object o of kind.
func (a admitted[T]) outcome(kind kinds.Kind, o *manifest.Object) *outcome {
	d := Decision{Kind: string(kind), Namespace: o.Namespace, Name: o.Name, File: o.File, Line: o.Line,
		Operation: a.operation, Denied: a.denied}
	fs := make([]Finding, 0, len(a.res.Findings))
	ids := map[engine.Action][]string{}
	for _, f := range a.res.Findings {
		fs = append(fs, Finding{Rule: f.Rule, Action: f.Action, Kind: string(kind), Namespace: o.Namespace, Name: o.Name,
			Field: f.Error.Field, Message: message(f), File: o.File, Line: o.Line})
		ids[f.Action] = append(ids[f.Action], f.Rule)
	}
	if a.mutation != nil {
		for _, c := range a.mutation.Changes() {
			fs = append(fs, Finding{Rule: c.Rule, Action: engine.Mutate, Kind: string(kind), Namespace: o.Namespace, Name: o.Name,
				Field: c.Field, Message: c.Message, File: o.File, Line: o.Line, Patch: redacted([]jsonpatch.JsonPatchOperation{c.Patch})})
			ids[engine.Mutate] = append(ids[engine.Mutate], c.Rule)
		}
		d.Patch = redacted(a.mutation.Patch())
	}
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Field != fs[j].Field {
			return fs[i].Field < fs[j].Field
		}
		return fs[i].Rule < fs[j].Rule
	})
	d.Deny, d.Warn, d.Audit, d.Mutations = set(ids[engine.Deny]), set(ids[engine.Warn]), set(ids[engine.Audit]), set(ids[engine.Mutate])
	return &outcome{decision: d, findings: fs}
}

// lastAppliedPointer is the JSON pointer of kubectl's last-applied
// configuration, which password-secret-ref rewrites.
var lastAppliedPointer = engine.Pointer("metadata", "annotations", rules.LastAppliedAnnotation)

// redactedLastApplied stands in reports for the value of a patch that
// rewrites kubectl's last-applied configuration: a copy of the whole
// manifest (other env values included) does not belong in a report that
// may be uploaded (SARIF to code scanning) and read by people who cannot
// read the object.
const redactedLastApplied = "<kubectl last-applied-configuration, rewritten the same way as the env var; not shown>"

// redacted returns ops with the value of an operation on kubectl's
// last-applied configuration replaced by redactedLastApplied.
func redacted(ops []jsonpatch.JsonPatchOperation) []jsonpatch.JsonPatchOperation {
	for i, op := range ops {
		if op.Path == lastAppliedPointer {
			ops = slices.Clone(ops) // the mutation's own operations stay as they are
			ops[i].Value = redactedLastApplied
		}
	}
	return ops
}

// set returns ids sorted, each once; nil for none.
func set(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	return sets.List(sets.New(ids...))
}

// storeSecrets stores the Secrets mutation m writes, as they would be once
// written (an existing Secret with the keys added), and describes them.
func storeSecrets(s *store, v *view, m *engine.Mutation) []SecretWrite {
	if m == nil || len(m.Secrets()) == 0 {
		return nil
	}
	planned := m.Lookup(withValues{v})
	var out []SecretWrite
	for _, sr := range m.Secrets() {
		sec, err := planned.Secret(context.Background(), sr.Namespace, sr.Name)
		if err != nil {
			continue // the view reads the object's own namespace: no error
		}
		var applied *manifest.Object
		if prev := s.secrets[sr.Name]; prev != nil {
			applied = prev.applied
		}
		s.putSecret(sec, applied)
		out = append(out, SecretWrite{Namespace: sr.Namespace, Name: sr.Name, Create: sr.Create, Keys: sr.Keys()})
	}
	return out
}

// message is the finding as kubectl prints a field error, less its field
// path and its "[rule: ID]" tag.
func message(f engine.Finding) string {
	return strings.TrimSuffix(f.Error.ErrorBody(), fmt.Sprintf(" [rule: %s]", f.Rule))
}
