package rules

import (
	"context"
	"fmt"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// templateDiff is how one volumeClaimTemplate (same index in the stored and
// the new StatefulSet) changed.
type templateDiff struct {
	index    int
	name     string
	from, to resource.Quantity // storage requests, when both are set
	// other are the paths of every other change, rooted at the template.
	other []*field.Path
}

func (d *templateDiff) grown() bool { return d.to.Cmp(d.from) > 0 }

func (d *templateDiff) shrunk() bool { return d.to.Cmp(d.from) < 0 }

// requestPath is spec.volumeClaimTemplates[i].spec.resources.requests[storage].
func requestPath(i int) *field.Path {
	return vctPath.Index(i).Child("spec", "resources", "requests").Key(string(corev1.ResourceStorage))
}

// diffTemplates compares the volumeClaimTemplates of an UPDATE index by
// index, as the apiserver does. It returns nil, nil when they are
// semantically equal; added and removed templates are reported as
// Forbidden errors.
func diffTemplates(in *engine.Input[*appsv1.StatefulSet]) ([]templateDiff, field.ErrorList) {
	if in.Operation != admissionv1.Update || in.OldObject == nil {
		return nil, nil
	}
	olds, news := in.OldObject.Spec.VolumeClaimTemplates, in.Object.Spec.VolumeClaimTemplates
	if equality.Semantic.DeepEqual(olds, news) {
		return nil, nil
	}
	var diffs []templateDiff
	var structural field.ErrorList
	for i := range max(len(olds), len(news)) {
		switch {
		case i >= len(olds):
			structural = append(structural, field.Forbidden(vctPath.Index(i), fmt.Sprintf(
				"adds volumeClaimTemplate %q to an existing StatefulSet", news[i].Name)))
			continue
		case i >= len(news):
			structural = append(structural, field.Forbidden(vctPath.Index(i), fmt.Sprintf(
				"removes volumeClaimTemplate %q from an existing StatefulSet", olds[i].Name)))
			continue
		}
		if equality.Semantic.DeepEqual(olds[i], news[i]) {
			continue
		}
		d := templateDiff{index: i, name: news[i].Name}
		o, n := olds[i].DeepCopy(), news[i].DeepCopy()
		from, okFrom := StorageRequest(o)
		to, okTo := StorageRequest(n)
		if okFrom && okTo {
			d.from, d.to = from, to
			n.Spec.Resources.Requests[corev1.ResourceStorage] = from
		}
		if !equality.Semantic.DeepEqual(o, n) {
			d.other = changedPaths(vctPath.Index(i), o, n)
		}
		diffs = append(diffs, d)
	}
	return diffs, structural
}

// orphanAndRecreate is the advice for a change to volumeClaimTemplates that
// `stsguard expand` does not cover.
func orphanAndRecreate(sts *appsv1.StatefulSet) string {
	return fmt.Sprintf("revert it; to really change the template, delete the StatefulSet while keeping its pods and PVCs (kubectl delete statefulset %s -n %s --cascade=orphan) and create it again: existing PVCs keep their old spec, only new ordinals get the new one",
		sts.Name, sts.Namespace)
}

// pureGrowth returns the templates an UPDATE grows when growing storage
// requests is all it does to volumeClaimTemplates; nil otherwise.
func pureGrowth(in *engine.Input[*appsv1.StatefulSet]) []templateDiff {
	diffs, structural := diffTemplates(in)
	if len(structural) > 0 {
		return nil
	}
	var grown []templateDiff
	for _, d := range diffs {
		if len(d.other) > 0 || d.shrunk() {
			return nil
		}
		if d.grown() {
			grown = append(grown, d)
		}
	}
	return grown
}

// Annotations that mark the default StorageClass (storage.k8s.io/v1 and its
// beta predecessor, both still honoured by the DefaultStorageClass admission
// plugin), and the legacy class annotation of a PVC.
const (
	defaultClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	betaDefaultClassAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
	betaStorageClassAnnotation = "volume.beta.kubernetes.io/storage-class"
)

var vctPath = field.NewPath("spec", "volumeClaimTemplates")

// claimClass returns the StorageClass name a PVC created from t asks for and
// whether it asks for one at all (false: the default StorageClass applies).
// An explicit "" means no class (static provisioning).
func claimClass(t *corev1.PersistentVolumeClaim) (string, bool) {
	if t.Spec.StorageClassName != nil {
		return *t.Spec.StorageClassName, true
	}
	if a, ok := t.Annotations[betaStorageClassAnnotation]; ok {
		return a, true
	}
	return "", false
}

// defaultStorageClass returns the StorageClass the DefaultStorageClass
// admission plugin would assign (the newest of those marked default), or
// nil, and the names of every class for messages.
func defaultStorageClass(ctx context.Context, lk engine.Lookup) (*storagev1.StorageClass, []string, error) {
	all, err := lk.StorageClasses(ctx)
	if err != nil {
		return nil, nil, err
	}
	var def *storagev1.StorageClass
	names := make([]string, 0, len(all))
	for _, sc := range all {
		names = append(names, sc.Name)
		if sc.Annotations[defaultClassAnnotation] != "true" && sc.Annotations[betaDefaultClassAnnotation] != "true" {
			continue
		}
		if def == nil || sc.CreationTimestamp.After(def.CreationTimestamp.Time) ||
			(sc.CreationTimestamp.Equal(&def.CreationTimestamp) && sc.Name < def.Name) {
			def = sc
		}
	}
	sort.Strings(names)
	return def, names, nil
}

// templateClass resolves the StorageClass of template i: the class, its
// name, and a finding when it cannot be resolved (nil class and nil finding
// for an explicit "" class).
func templateClass(ctx context.Context, lk engine.Lookup, t *corev1.PersistentVolumeClaim, path *field.Path) (*storagev1.StorageClass, *field.Error) {
	name, named := claimClass(t)
	if named {
		if name == "" {
			return nil, nil
		}
		sc, err := lk.StorageClass(ctx, name)
		switch {
		case apierrors.IsNotFound(err):
			_, names, lerr := defaultStorageClass(ctx, lk)
			if lerr != nil {
				return nil, engine.LookupFailed(path, "StorageClasses", lerr)
			}
			e := field.NotFound(path, name)
			e.Detail = fmt.Sprintf("no StorageClass %q, so the PVCs of template %q stay Pending and the pods never start; %s",
				name, t.Name, chooseClass(names))
			return nil, e
		case err != nil:
			return nil, engine.LookupFailed(path, "StorageClass "+name, err)
		}
		return sc, nil
	}
	def, names, err := defaultStorageClass(ctx, lk)
	if err != nil {
		return nil, engine.LookupFailed(path, "StorageClasses", err)
	}
	if def == nil {
		return nil, field.Required(path, fmt.Sprintf(
			"template %q names no storageClassName and the cluster has no default StorageClass, so its PVCs stay Pending until PersistentVolumes are bound by hand; %s, or mark a class default (annotation %s: \"true\")",
			t.Name, chooseClass(names), defaultClassAnnotation))
	}
	return def, nil
}

// chooseClass tells the user which classes exist: "set storageClassName to
// one of "a", "b"", or that there are none.
func chooseClass(names []string) string {
	if len(names) == 0 {
		return "the cluster has no StorageClass at all: ask an administrator for one"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return "set storageClassName to one of " + strings.Join(q, ", ")
}

// createOrTemplateChanged reports whether the request creates the
// StatefulSet or changes its pod template: rules about the template speak
// then, not on every scale.
func createOrTemplateChanged(in *engine.Input[*appsv1.StatefulSet]) bool {
	return in.Operation == admissionv1.Create || in.OldObject == nil || templateChanged(in)
}
