package background

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/stsguard/stsguard/audit"
	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/kinds"
	"github.com/stsguard/stsguard/lookup"
	"github.com/stsguard/stsguard/reports"
)

// Defaults of Options.
const (
	// DefaultInterval is how often everything is judged again: 10 minutes.
	DefaultInterval = 10 * time.Minute
	// DefaultLeaseName is the Lease the replicas elect the auditor on.
	DefaultLeaseName = "stsguard-background-audit"
	// DefaultJudgeQPS bounds the objects judged per second (burst: one
	// second's worth): at about 60 µs of CPU each (docs/speed.md), a
	// tenth of a core at most, so that the webhook on the same replica
	// keeps its CPU. 10,000 objects take 20 s.
	DefaultJudgeQPS = 500
	// DefaultWriteDelay is how long a namespace's report waits after a
	// change before it is written, so that the changes of a rollout or a
	// scan make one write: 2 s.
	DefaultWriteDelay = 2 * time.Second
)

// Leader election timing: client-go's usual values.
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
)

// policyCheckPeriod is how often the audit looks whether the policy in
// force changed (a reload of the policy file), which re-judges everything.
const policyCheckPeriod = 5 * time.Second

// metricsPeriod is how often the violation gauges are brought up to date
// while results change.
const metricsPeriod = time.Second

// Options configure the background audit. The zero value of each field
// means its default.
type Options struct {
	// Interval is how often every object is judged again, besides the
	// changes. Default DefaultInterval.
	Interval time.Duration
	// Reports is the reports API results are written in. Default
	// reports.PolicyReport; reports.NoReports writes none (metrics only).
	Reports reports.API
	// MaxResults bounds the results of one report; the rest are counted.
	// Default reports.DefaultMaxResults.
	MaxResults int
	// NamespaceLabel adds the resource_namespace label to
	// stsguard_violations.
	// Default false: one series per rule and action.
	NamespaceLabel bool
	// LeaseNamespace is the namespace of the Lease; required.
	LeaseNamespace string
	// LeaseName is the Lease the replicas elect the auditor on. Default
	// DefaultLeaseName.
	LeaseName string
	// Identity is this replica's name in the Lease. Default the host name
	// (the pod's name) and a random suffix.
	Identity string
	// JudgeQPS bounds the objects judged per second. Default
	// DefaultJudgeQPS.
	JudgeQPS float64
	// WriteDelay is how long a namespace's report waits after a change.
	// Default DefaultWriteDelay.
	WriteDelay time.Duration
}

func (o *Options) setDefaults() {
	o.Interval = cmp.Or(o.Interval, DefaultInterval)
	o.Reports = cmp.Or(o.Reports, reports.PolicyReport)
	o.MaxResults = cmp.Or(o.MaxResults, reports.DefaultMaxResults)
	o.LeaseName = cmp.Or(o.LeaseName, DefaultLeaseName)
	if o.Identity == "" {
		host, _ := os.Hostname()
		o.Identity = cmp.Or(host, "stsguard") + "_" + string(uuid.NewUUID())
	}
	o.JudgeQPS = cmp.Or(o.JudgeQPS, DefaultJudgeQPS)
	o.WriteDelay = cmp.Or(o.WriteDelay, DefaultWriteDelay)
}

// Audit is the background audit: a manager.Runnable that campaigns for
// the Lease and, while it holds it, judges what exists and reports it.
// Losing the Lease stops the audit (its violations are no longer
// exported) and campaigns again; it never stops the process, whose
// webhook serves on.
type Audit struct {
	o       Options
	cache   cache.Cache
	engine  func() *engine.Engine
	writer  *reports.Writer
	leases  kubernetes.Interface
	metrics *Metrics
	log     logr.Logger

	leadMu        sync.Mutex // held by the term in progress
	notInstalled  sync.Once  // "not installed" is logged once per process
	reportsLogged atomic.Bool
}

var _ manager.Runnable = (*Audit)(nil)
var _ manager.LeaderElectionRunnable = (*Audit)(nil)

// New returns the background audit of the objects in c (the manager's
// cache, whose informers of kinds.All() and lookup.SecretIndex are
// registered), judged by the engine in force (eng, called at each
// judgment), with reports written through reportClient (get, create,
// update, delete and list of the reports API's reports), the Lease kept
// through leases (get, create, update of coordination.k8s.io Leases in
// o.LeaseNamespace). It returns an error for an unknown reports API or a
// missing LeaseNamespace.
func New(o Options, c cache.Cache, eng func() *engine.Engine, reportClient client.Client, leases kubernetes.Interface, m *Metrics, log logr.Logger) (*Audit, error) {
	o.setDefaults()
	switch o.Reports {
	case reports.PolicyReport, reports.OpenReports, reports.NoReports:
	default:
		return nil, fmt.Errorf("reports API %q: use one of %v", o.Reports, reports.APIs)
	}
	if o.LeaseNamespace == "" {
		return nil, errors.New("the background audit needs the namespace of its Lease")
	}
	return &Audit{o: o, cache: c, engine: eng, leases: leases, metrics: m, log: log,
		writer: &reports.Writer{Client: reportClient, API: o.Reports, MaxResults: o.MaxResults}}, nil
}

// NeedLeaderElection is false: the audit elects its own leader on its own
// Lease, so that the manager's election, which stops the process when its
// Lease is lost, does not apply to the webhook.
func (a *Audit) NeedLeaderElection() bool { return false }

// Start campaigns for the Lease until ctx is done, running the audit
// while it holds it. It returns nil once ctx is done (the Lease released),
// or an error when the Lease cannot be used at all.
func (a *Audit) Start(ctx context.Context) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: a.o.LeaseNamespace, Name: a.o.LeaseName},
		Client:     a.leases.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: a.o.Identity},
	}
	a.log.Info("background audit: campaigning for the Lease", "lease", a.o.LeaseNamespace+"/"+a.o.LeaseName, "identity", a.o.Identity,
		"interval", a.o.Interval, "reports", a.o.Reports)
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
			ReleaseOnCancel: true, Name: a.o.LeaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: a.lead,
				OnStoppedLeading: func() {},
			},
		})
		if err != nil {
			return fmt.Errorf("background audit: %w", err)
		}
		le.Run(ctx)
	}
	a.leadMu.Lock() // the term in progress, if any, has ended
	defer a.leadMu.Unlock()
	return nil
}

// lead runs the audit for one term, until ctx is done (the Lease lost or
// the process stopping).
func (a *Audit) lead(ctx context.Context) {
	a.leadMu.Lock()
	defer a.leadMu.Unlock()
	if ctx.Err() != nil {
		return
	}
	a.log.Info("background audit: holding the Lease; judging what exists", "identity", a.o.Identity)
	a.metrics.leader.Set(1)
	defer func() {
		a.metrics.stopped()
		a.log.Info("background audit: stopped (the Lease is lost or the process stops)")
	}()
	newTerm(a).run(ctx)
}

// term is the audit's state for one term of leadership.
type term struct {
	*Audit
	st      *store
	queue   workqueue.TypedRateLimitingInterface[key]
	writes  workqueue.TypedRateLimitingInterface[string]
	limiter *rate.Limiter

	mu         sync.Mutex
	pending    map[key]struct{} // objects the scan in progress has yet to judge
	scanStart  time.Time
	scans      int
	stale      []string      // namespaces with a report at the start
	firstScan  chan struct{} // closed when the first scan is done
	eng        *engine.Engine
	skipWrites atomic.Bool // the reports API is not installed: until the next scan
	dirty      atomic.Bool // results changed since the gauges were set
	gaugeMu    sync.Mutex  // held while the gauges are set
	lastCounts map[violation]int
}

func newTerm(a *Audit) *term {
	return &term{
		Audit: a,
		st:    newStore(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[key](),
			workqueue.TypedRateLimitingQueueConfig[key]{Name: "background_audit"}),
		writes: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "background_audit_reports"}),
		limiter:   rate.NewLimiter(rate.Limit(a.o.JudgeQPS), max(1, int(a.o.JudgeQPS))),
		pending:   map[key]struct{}{},
		firstScan: make(chan struct{}),
	}
}

func (t *term) run(ctx context.Context) {
	if !t.cache.WaitForCacheSync(ctx) {
		return
	}
	stale, err := t.writer.Namespaces(ctx)
	switch {
	case errors.Is(err, reports.ErrNotInstalled):
		t.reportsMissing(err)
	case err != nil:
		t.log.Error(err, "background audit: listing the existing reports; those of namespaces now without findings stay until their namespace changes")
	}
	t.stale = stale
	remove, err := t.watch(ctx)
	if err != nil {
		t.log.Error(err, "background audit: watching the informers; judging on the interval only")
	}
	defer remove()
	var loops sync.WaitGroup
	loops.Go(func() { t.judgeLoop(ctx) })
	loops.Go(func() { t.writeLoop(ctx) })
	defer func() {
		t.queue.ShutDown()
		t.writes.ShutDown()
		loops.Wait()
	}()

	t.scan(ctx)
	scan := time.NewTicker(t.o.Interval)
	defer scan.Stop()
	policy := time.NewTicker(policyCheckPeriod)
	defer policy.Stop()
	gauges := time.NewTicker(metricsPeriod)
	defer gauges.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-scan.C:
			t.scan(ctx)
		case <-policy.C:
			if t.engine() != t.currentEngine() {
				t.log.Info("background audit: the policy changed; judging everything again")
				t.scan(ctx)
			}
		case <-gauges.C:
			t.setGauges()
		}
	}
}

func (t *term) currentEngine() *engine.Engine {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.eng
}

// scan queues every StatefulSet, Service and Secret of the cache, and
// every object held (one deleted while no event reached the audit is
// found gone), and retries report writes the missing API held back.
func (t *term) scan(ctx context.Context) {
	var keys []key
	for _, k := range kinds.All() {
		if !k.Judged {
			continue
		}
		list := k.NewList().(client.ObjectList)
		if err := t.cache.List(ctx, list); err != nil {
			t.log.Error(err, "background audit: listing from the cache", "kind", k.Kind)
			continue
		}
		_ = forEach(list, func(obj client.Object) {
			keys = append(keys, key{k.Kind, obj.GetNamespace(), obj.GetName()})
		})
	}
	keys = append(keys, t.st.keys()...)
	t.mu.Lock()
	t.eng = t.engine()
	if len(t.pending) == 0 {
		t.scanStart = time.Now()
	}
	for _, k := range keys {
		t.pending[k] = struct{}{}
	}
	empty := len(t.pending) == 0
	t.mu.Unlock()
	if t.skipWrites.Swap(false) {
		for _, ns := range t.st.namespaces() {
			t.writes.AddAfter(ns, t.o.WriteDelay)
		}
	}
	for _, k := range keys {
		t.queue.Add(k)
	}
	if empty {
		t.scanned(key{})
	}
}

// scanned records that k was judged, and ends the scan when it was the
// last one pending.
func (t *term) scanned(k key) {
	t.mu.Lock()
	if _, ok := t.pending[k]; ok {
		delete(t.pending, k)
	} else if k != (key{}) {
		t.mu.Unlock()
		return
	}
	if len(t.pending) > 0 {
		t.mu.Unlock()
		return
	}
	d := time.Since(t.scanStart)
	first := t.scans == 0
	t.scans++
	stale := t.stale
	t.mu.Unlock()
	t.setGauges()
	t.metrics.scanDuration.Set(d.Seconds())
	t.metrics.scanTimestamp.Set(float64(time.Now().UnixNano()) / 1e9)
	_, objects := t.st.violations(false)
	t.log.Info("background audit: scan done", "objects", objects, "duration", d.Round(time.Millisecond), "first", first)
	if first {
		for _, ns := range stale {
			t.writes.AddAfter(ns, t.o.WriteDelay)
		}
		close(t.firstScan)
	}
}

// judgeLoop judges the queued objects, at most JudgeQPS a second.
func (t *term) judgeLoop(ctx context.Context) {
	for {
		k, shutdown := t.queue.Get()
		if shutdown {
			return
		}
		t.judge(ctx, k)
		t.queue.Done(k)
	}
}

func (t *term) judge(ctx context.Context, k key) {
	if err := t.limiter.Wait(ctx); err != nil {
		return // stopping
	}
	info, _ := kinds.Get(k.Kind)
	obj := info.New()
	var changed bool
	err := t.cache.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: k.Name}, obj)
	switch {
	case apierrors.IsNotFound(err):
		changed = t.st.remove(k)
	case err != nil:
		t.log.Error(err, "background audit: reading from the cache", "kind", k.Kind, "namespace", k.Namespace, "name", k.Name)
		t.queue.AddRateLimited(k)
		return
	default:
		_, findings, ok, err := audit.Judge(ctx, t.engine(), engine.Validating, obj, lookup.Reader{Cache: t.cache})
		if err != nil {
			if ctx.Err() == nil {
				t.log.Error(err, "background audit: judging", "kind", k.Kind, "namespace", k.Namespace, "name", k.Name)
				t.queue.AddRateLimited(k)
			}
			return
		}
		t.metrics.judgments.Inc()
		if !ok {
			changed = t.st.remove(k)
			break
		}
		gvk := info.GroupVersionKind
		subj := reports.Subject{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Namespace: k.Namespace, Name: k.Name, UID: obj.GetUID()}
		changed = t.st.put(k, subj, findings, metav1.Now())
	}
	t.queue.Forget(k)
	if changed {
		t.dirty.Store(true)
		t.writes.AddAfter(k.Namespace, t.o.WriteDelay)
	}
	t.scanned(k)
}

// writeLoop writes the reports of the namespaces whose results changed,
// once the first scan is done.
func (t *term) writeLoop(ctx context.Context) {
	select {
	case <-t.firstScan:
	case <-ctx.Done():
		return
	}
	for {
		ns, shutdown := t.writes.Get()
		if shutdown {
			return
		}
		t.write(ctx, ns)
		t.writes.Done(ns)
	}
}

func (t *term) write(ctx context.Context, ns string) {
	if t.skipWrites.Load() {
		t.writes.Forget(ns)
		return
	}
	op, err := t.writer.Write(ctx, ns, t.st.results(ns))
	switch {
	case errors.Is(err, reports.ErrNotInstalled):
		t.reportsMissing(err)
		t.writes.Forget(ns)
	case err != nil:
		if ctx.Err() == nil {
			t.log.Error(err, "background audit: writing the report", "namespace", ns)
			t.writes.AddRateLimited(ns)
		}
	default:
		t.writes.Forget(ns)
		if op != reports.OpNone {
			t.metrics.writes.WithLabelValues(op).Inc()
			if !t.reportsLogged.Swap(true) {
				t.log.Info("background audit: writing reports", "api", t.o.Reports)
			}
		}
	}
}

// reportsMissing holds report writes back until the next scan, and says
// once per process that only metrics are exported.
func (t *term) reportsMissing(err error) {
	t.skipWrites.Store(true)
	t.notInstalled.Do(func() {
		t.log.Info("background audit: the reports API is not installed, so findings are exported as metrics only (stsguard_violations); install its CustomResourceDefinition to get reports",
			"api", t.o.Reports, "error", err.Error())
	})
}

// setGauges brings the gauges up to date when results changed.
func (t *term) setGauges() {
	t.gaugeMu.Lock()
	defer t.gaugeMu.Unlock()
	if !t.dirty.Swap(false) {
		return
	}
	counts, objects := t.st.violations(t.metrics.namespaced)
	t.metrics.setViolations(counts, t.lastCounts)
	t.lastCounts = counts
	t.metrics.objects.Set(float64(objects))
}

// watch adds the event handlers that queue the objects a change may
// affect; remove removes them.
func (t *term) watch(ctx context.Context) (remove func(), err error) {
	var regs []func()
	remove = func() {
		for _, r := range regs {
			r()
		}
	}
	add := func(obj client.Object, h toolscache.ResourceEventHandlerDetailedFuncs) error {
		inf, err := t.cache.GetInformer(ctx, obj)
		if err != nil {
			return err
		}
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			return err
		}
		regs = append(regs, func() { _ = inf.RemoveEventHandler(reg) })
		return nil
	}
	errs := []error{
		add(&appsv1.StatefulSet{}, handlers(func(old, cur *appsv1.StatefulSet) {
			if old != nil && cur != nil && !statefulSetChanged(old, cur) {
				return
			}
			for _, s := range []*appsv1.StatefulSet{old, cur} {
				if s != nil {
					t.enqueue(statefulSetDependents(s)...)
				}
			}
		})),
		add(&corev1.Service{}, handlers(func(old, cur *corev1.Service) {
			if old != nil && cur != nil && equality.Semantic.DeepEqual(old.Spec, cur.Spec) && metaEqual(old, cur) {
				return
			}
			svc := cmp.Or(cur, old)
			t.enqueue(key{kinds.Service, svc.Namespace, svc.Name})
			t.enqueueStatefulSets(ctx, []client.ListOption{client.InNamespace(svc.Namespace)}, func(s *appsv1.StatefulSet) bool { return namesService(s, svc) })
		})),
		add(&corev1.Secret{}, handlers(func(old, cur *corev1.Secret) {
			sec := cmp.Or(cur, old)
			t.enqueue(key{kinds.Secret, sec.Namespace, sec.Name})
			t.enqueueStatefulSets(ctx, []client.ListOption{client.InNamespace(sec.Namespace), client.MatchingFields{lookup.SecretIndex: sec.Name}}, nil)
		})),
		add(&storagev1.StorageClass{}, handlers(func(old, cur *storagev1.StorageClass) {
			class := cmp.Or(cur, old)
			t.enqueueStatefulSets(ctx, nil, func(s *appsv1.StatefulSet) bool { return usesStorageClass(s, class) })
		})),
		add(&corev1.Namespace{}, handlers(func(old, cur *corev1.Namespace) {
			if old == nil || cur == nil || metaEqual(old, cur) {
				return // a new namespace is empty; a deleted one's objects go one by one
			}
			t.enqueueNamespace(ctx, cur.Name)
		})),
		add(&corev1.PersistentVolumeClaim{}, handlers(func(old, cur *corev1.PersistentVolumeClaim) {
			if old != nil && cur != nil && equality.Semantic.DeepEqual(old.Spec, cur.Spec) && equality.Semantic.DeepEqual(old.Status.Capacity, cur.Status.Capacity) {
				return
			}
			claim := cmp.Or(cur, old)
			t.enqueueStatefulSets(ctx, []client.ListOption{client.InNamespace(claim.Namespace)}, func(s *appsv1.StatefulSet) bool { return ownsClaim(s, claim) })
		})),
	}
	return remove, errors.Join(errs...)
}

// handlers calls f with the old and the current object of each event: old
// nil on an add, cur nil on a delete. The adds of the initial list are
// left to the first scan.
func handlers[T client.Object](f func(old, cur T)) toolscache.ResourceEventHandlerDetailedFuncs {
	var zero T
	return toolscache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if o, ok := obj.(T); ok && !initial {
				f(zero, o)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(T)
			n, ok2 := newObj.(T)
			if ok1 && ok2 {
				f(o, n)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if o, ok := obj.(T); ok {
				f(o, zero)
			}
		},
	}
}

func metaEqual(a, b metav1.Object) bool {
	return equality.Semantic.DeepEqual(a.GetLabels(), b.GetLabels()) && equality.Semantic.DeepEqual(a.GetAnnotations(), b.GetAnnotations())
}

func (t *term) enqueue(keys ...key) {
	for _, k := range keys {
		t.queue.Add(k)
	}
}

// enqueueStatefulSets queues the StatefulSets of the cache listed with
// opts for which keep is true (all, for a nil keep).
func (t *term) enqueueStatefulSets(ctx context.Context, opts []client.ListOption, keep func(*appsv1.StatefulSet) bool) {
	var list appsv1.StatefulSetList
	if err := t.cache.List(ctx, &list, opts...); err != nil {
		t.log.Error(err, "background audit: listing StatefulSets from the cache")
		return
	}
	for i := range list.Items {
		if s := &list.Items[i]; keep == nil || keep(s) {
			t.enqueue(key{kinds.StatefulSet, s.Namespace, s.Name})
		}
	}
}

// enqueueNamespace queues every judged object of namespace (its labels
// changed: namespaceSelector exemptions).
func (t *term) enqueueNamespace(ctx context.Context, namespace string) {
	for _, k := range kinds.All() {
		if !k.Judged {
			continue
		}
		list := k.NewList().(client.ObjectList)
		if err := t.cache.List(ctx, list, client.InNamespace(namespace)); err != nil {
			t.log.Error(err, "background audit: listing from the cache", "kind", k.Kind)
			continue
		}
		_ = forEach(list, func(obj client.Object) { t.enqueue(key{k.Kind, obj.GetNamespace(), obj.GetName()}) })
	}
}
