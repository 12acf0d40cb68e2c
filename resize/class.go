package resize

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// Annotations that mark the default StorageClass (storage.k8s.io/v1 and its
// beta predecessor, both still honoured by the DefaultStorageClass admission
// plugin), and the legacy class annotation of a PVC.
const (
	DefaultClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	betaDefaultClassAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
	betaStorageClassAnnotation = "volume.beta.kubernetes.io/storage-class"
)

// ClaimClass returns the StorageClass name a PVC created from t asks for and
// whether it asks for one at all (false: the default StorageClass applies).
// An explicit "" means no class (static provisioning).
func ClaimClass(t *corev1.PersistentVolumeClaim) (string, bool) {
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
		if sc.Annotations[DefaultClassAnnotation] != "true" && sc.Annotations[betaDefaultClassAnnotation] != "true" {
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

// TemplateClass resolves the StorageClass of template i: the class, its
// name, and a finding when it cannot be resolved (nil class and nil finding
// for an explicit "" class).
func TemplateClass(ctx context.Context, lk engine.Lookup, t *corev1.PersistentVolumeClaim, path *field.Path) (*storagev1.StorageClass, *field.Error) {
	name, named := ClaimClass(t)
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
			t.Name, chooseClass(names), DefaultClassAnnotation))
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
