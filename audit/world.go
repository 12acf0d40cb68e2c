package audit

import (
	"context"
	"fmt"
	"slices"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stsguard/stsguard/internal/podrefs"
	"github.com/stsguard/stsguard/internal/secretdata"
	"github.com/stsguard/stsguard/manifest"
)

// world is what the apiserver would store while a replay runs: the objects
// that existed before it (live objects) and those admitted so far. The
// namespaced objects are kept per namespace, and each namespace is replayed
// by one goroutine, because every rule reads only the namespace of the
// object it judges. StorageClasses and Namespaces, the cluster-scoped kinds
// the rules read, are never judged (so never denied): they are known up
// front, each with the position it is created at, and a view sees those
// created before its position.
type world struct {
	namespaces map[string]*store
	classes    timeline[*storagev1.StorageClass]
	nss        timeline[*corev1.Namespace]
}

// store holds the namespaced objects of one namespace.
type store struct {
	services     map[string]*stored[*corev1.Service]
	secrets      map[string]*stored[*corev1.Secret]
	statefulSets map[string]*stored[*appsv1.StatefulSet]
	// stsList and claims are in the order first stored, as the lookups
	// return them; the index maps give each name's place.
	stsList  []*appsv1.StatefulSet
	stsIndex map[string]int
	// stsSecrets are the names of the Secrets each StatefulSet of stsList
	// references (podrefs.SecretNames), and bySecret the places in stsList
	// of the StatefulSets that reference each Secret, in increasing order:
	// the index StatefulSetsReferencingSecret reads instead of walking
	// every reference of every StatefulSet for each Secret.
	stsSecrets [][]string
	bySecret   map[string][]int
	claims     []*corev1.PersistentVolumeClaim
	claimIndex map[string]int
	// planned are the Services of the input in this namespace, by name, each
	// with its position, file and line, in increasing position: known
	// before the replay starts, so that a StatefulSet can say which Service
	// the input creates after it (hintServiceLater).
	planned map[string][]manifest.Object
	// plannedPos are the positions of planned's objects, index for index.
	plannedPos map[string][]int
}

// stored is one object as stored, with where it came from.
type stored[T any] struct {
	obj T
	// applied is the manifest object last applied to it in this replay
	// (what kubectl apply records as the last-applied configuration); nil
	// for a live object not applied since, and for a Secret written by
	// password-secret-ref.
	applied *manifest.Object
	// allocated is true for a Service created in this replay without a
	// clusterIP and left so by admission: the apiserver gave it a cluster
	// IP, which audit cannot know, so it is stored with clusterIP "" and
	// type ClusterIP.
	allocated bool
	// cached is what the rules' Lookup returns of a Secret: obj trimmed by
	// secretdata.Trim (key names and digests, no values), as in the
	// webhook's informer cache. nil for other kinds.
	cached T
}

func newWorld() *world {
	return &world{namespaces: map[string]*store{}}
}

// ns returns the store of namespace, creating it.
func (w *world) ns(namespace string) *store {
	s, ok := w.namespaces[namespace]
	if !ok {
		s = &store{
			services:     map[string]*stored[*corev1.Service]{},
			secrets:      map[string]*stored[*corev1.Secret]{},
			statefulSets: map[string]*stored[*appsv1.StatefulSet]{},
			stsIndex:     map[string]int{},
			bySecret:     map[string][]int{},
			claimIndex:   map[string]int{},
		}
		w.namespaces[namespace] = s
	}
	return s
}

// addCluster records a cluster-scoped object created at position pos (-1:
// before the replay). It reports false for a kind that is not cluster-scoped.
func (w *world) addCluster(obj runtime.Object, pos int) bool {
	switch v := obj.(type) {
	case *storagev1.StorageClass:
		w.classes.add(v.Name, v, pos)
	case *corev1.Namespace:
		w.nss.add(v.Name, v, pos)
	default:
		return false
	}
	return true
}

// plan records that the input creates Service o at position pos.
func (s *store) plan(o manifest.Object, pos int) {
	if s.planned == nil {
		s.planned, s.plannedPos = map[string][]manifest.Object{}, map[string][]int{}
	}
	o.Object = nil // only its name and place are read
	s.planned[o.Name] = append(s.planned[o.Name], o)
	s.plannedPos[o.Name] = append(s.plannedPos[o.Name], pos)
}

// plannedAfter returns the first Service named name that the input creates
// after position pos.
func (s *store) plannedAfter(name string, pos int) (manifest.Object, bool) {
	ps := s.plannedPos[name]
	i := sort.SearchInts(ps, pos+1)
	if i == len(ps) {
		return manifest.Object{}, false
	}
	return s.planned[name][i], true
}

// put stores a namespaced object as it now exists (created or replaced).
func (s *store) put(obj runtime.Object, applied *manifest.Object) {
	switch v := obj.(type) {
	case *corev1.Service:
		s.services[v.Name] = &stored[*corev1.Service]{obj: v, applied: applied}
	case *corev1.Secret:
		s.putSecret(v, applied)
	case *appsv1.StatefulSet:
		defaultClaimTemplates(v) // as stored: a live object read as protobuf lacks the templates' kind
		s.statefulSets[v.Name] = &stored[*appsv1.StatefulSet]{obj: v, applied: applied}
		names := podrefs.SecretNames(&v.Spec.Template.Spec)
		if i, ok := s.stsIndex[v.Name]; ok {
			s.stsList[i] = v
			for _, n := range s.stsSecrets[i] {
				s.bySecret[n] = slices.DeleteFunc(s.bySecret[n], func(j int) bool { return j == i })
			}
			s.stsSecrets[i] = names
			for _, n := range names {
				at, _ := slices.BinarySearch(s.bySecret[n], i)
				s.bySecret[n] = slices.Insert(s.bySecret[n], at, i)
			}
			return
		}
		i := len(s.stsList)
		s.stsIndex[v.Name] = i
		s.stsList = append(s.stsList, v)
		s.stsSecrets = append(s.stsSecrets, names)
		for _, n := range names {
			s.bySecret[n] = append(s.bySecret[n], i)
		}
	case *corev1.PersistentVolumeClaim:
		if i, ok := s.claimIndex[v.Name]; ok {
			s.claims[i] = v
			return
		}
		s.claimIndex[v.Name] = len(s.claims)
		s.claims = append(s.claims, v)
	}
}

// putSecret stores Secret sec with what the rules read of it: a copy
// trimmed by secretdata.Trim, as the webhook's informer cache holds it, so
// that a rule decides on it as it would in the webhook.
func (s *store) putSecret(sec *corev1.Secret, applied *manifest.Object) {
	cached := sec // a live Secret: LoadCluster trimmed it
	if !secretdata.Trimmed(sec) {
		cached = sec.DeepCopy()
		secretdata.Trim(cached)
	}
	s.secrets[sec.Name] = &stored[*corev1.Secret]{obj: sec, applied: applied, cached: cached}
}

// timeline is a cluster-scoped kind: every version of each object with the
// position it is created (or replaced) at, in increasing position.
type timeline[T any] struct {
	byName map[string][]versioned[T]
	names  []string
}

type versioned[T any] struct {
	pos int
	obj T
}

func (t *timeline[T]) add(name string, obj T, pos int) {
	if t.byName == nil {
		t.byName = map[string][]versioned[T]{}
	}
	if _, ok := t.byName[name]; !ok {
		t.names = append(t.names, name)
	}
	t.byName[name] = append(t.byName[name], versioned[T]{pos: pos, obj: obj})
}

// at returns the version of name that exists just before position pos.
func (t *timeline[T]) at(name string, pos int) (T, bool) {
	var zero T
	vs := t.byName[name]
	i := sort.Search(len(vs), func(i int) bool { return vs[i].pos >= pos })
	if i == 0 {
		return zero, false
	}
	return vs[i-1].obj, true
}

// view is the engine.Lookup of one namespace's store just before position
// pos: what an admission request for the object at pos would read. Rules
// read only the namespace of the object they judge; a read of another
// namespace is an error (an internal, fail-open finding), never a silent
// answer from a store another goroutine writes.
type view struct {
	w         *world
	s         *store
	namespace string
	pos       int
}

func (v *view) other(namespace, what string) error {
	return fmt.Errorf("stsguard audit: a rule read %s in namespace %q while judging an object of namespace %q; the replay gives each namespace its own store", what, namespace, v.namespace)
}

func (v *view) Service(_ context.Context, namespace, name string) (*corev1.Service, error) {
	if namespace != v.namespace {
		return nil, v.other(namespace, "a Service")
	}
	if s, ok := v.s.services[name]; ok {
		return s.obj, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("services"), name)
}

func (v *view) Secret(_ context.Context, namespace, name string) (*corev1.Secret, error) {
	if namespace != v.namespace {
		return nil, v.other(namespace, "a Secret")
	}
	if s, ok := v.s.secrets[name]; ok {
		return s.cached, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("secrets"), name)
}

// withValues is v whose Secret returns the stored Secret itself, values
// included, for the replay's own bookkeeping (the Secret a mutation
// writes), never for a rule.
type withValues struct{ *view }

func (v withValues) Secret(_ context.Context, namespace, name string) (*corev1.Secret, error) {
	if namespace != v.namespace {
		return nil, v.other(namespace, "a Secret")
	}
	if s, ok := v.s.secrets[name]; ok {
		return s.obj, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("secrets"), name)
}

func (v *view) StatefulSets(_ context.Context, namespace string) ([]*appsv1.StatefulSet, error) {
	if namespace != v.namespace {
		return nil, v.other(namespace, "StatefulSets")
	}
	return v.s.stsList, nil
}

func (v *view) StatefulSetsReferencingSecret(_ context.Context, namespace, secret string) ([]*appsv1.StatefulSet, error) {
	if namespace != v.namespace {
		return nil, v.other(namespace, "StatefulSets")
	}
	return v.s.referencing(secret), nil
}

// referencing returns the StatefulSets of s whose pod template references
// Secret secret, in stsList order (as podrefs.StatefulSetsReferencing
// returns them); nil when there are none.
func (s *store) referencing(secret string) []*appsv1.StatefulSet {
	idx := s.bySecret[secret]
	if len(idx) == 0 {
		return nil
	}
	out := make([]*appsv1.StatefulSet, len(idx))
	for k, i := range idx {
		out[k] = s.stsList[i]
	}
	return out
}

func (v *view) StorageClass(_ context.Context, name string) (*storagev1.StorageClass, error) {
	if c, ok := v.w.classes.at(name, v.pos); ok {
		return c, nil
	}
	return nil, apierrors.NewNotFound(storagev1.Resource("storageclasses"), name)
}

func (v *view) StorageClasses(_ context.Context) ([]*storagev1.StorageClass, error) {
	var out []*storagev1.StorageClass
	for _, name := range v.w.classes.names {
		if c, ok := v.w.classes.at(name, v.pos); ok {
			out = append(out, c)
		}
	}
	return out, nil
}

func (v *view) Namespace(_ context.Context, name string) (*corev1.Namespace, error) {
	if n, ok := v.w.nss.at(name, v.pos); ok {
		return n, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("namespaces"), name)
}

func (v *view) PersistentVolumeClaims(_ context.Context, namespace string) ([]*corev1.PersistentVolumeClaim, error) {
	if namespace != v.namespace {
		return nil, v.other(namespace, "PersistentVolumeClaims")
	}
	return v.s.claims, nil
}
