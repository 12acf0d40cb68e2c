package engine

import (
	"fmt"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// Annotations that mark the default StorageClass (storage.k8s.io/v1 and its
// beta predecessor, both still honoured by the DefaultStorageClass admission
// plugin), and the legacy class annotation of a PVC.
const (
	defaultClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	betaDefaultClassAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
	betaStorageClassAnnotation = "volume.beta.kubernetes.io/storage-class"
)

var vctPath = field.NewPath("spec", "volumeClaimTemplates")

func storageRules(cfg *Config) []Rule[*appsv1.StatefulSet] {
	return []Rule[*appsv1.StatefulSet]{
		{ID: StorageClassNotFound, Check: checkStorageClassNotFound},
		{ID: StorageClassNotExpandable, Check: checkStorageClassNotExpandable},
		{ID: VolumeClaimTemplateUnmounted, Check: checkVolumeClaimTemplateUnmounted},
		{ID: PVCRetentionDelete, Check: func(in *Input[*appsv1.StatefulSet], _ Lookup) field.ErrorList { return checkPVCRetention(cfg, in) }},
	}
}

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
func defaultStorageClass(lk Lookup) (*storagev1.StorageClass, []string, error) {
	all, err := lk.StorageClasses()
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
func templateClass(lk Lookup, t *corev1.PersistentVolumeClaim, path *field.Path) (*storagev1.StorageClass, *field.Error) {
	name, named := claimClass(t)
	if named {
		if name == "" {
			return nil, nil
		}
		sc, err := lk.StorageClass(name)
		switch {
		case apierrors.IsNotFound(err):
			_, names, lerr := defaultStorageClass(lk)
			if lerr != nil {
				return nil, lookupFailed(path, "StorageClasses", lerr)
			}
			e := field.NotFound(path, name)
			e.Detail = fmt.Sprintf("no StorageClass %q, so the PVCs of template %q stay Pending and the pods never start; %s",
				name, t.Name, chooseClass(names))
			return nil, e
		case err != nil:
			return nil, lookupFailed(path, "StorageClass "+name, err)
		}
		return sc, nil
	}
	def, names, err := defaultStorageClass(lk)
	if err != nil {
		return nil, lookupFailed(path, "StorageClasses", err)
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

func checkStorageClassNotFound(in *Input[*appsv1.StatefulSet], lk Lookup) field.ErrorList {
	if in.Operation != admissionv1.Create {
		return nil // volumeClaimTemplates are immutable: judged once, on CREATE
	}
	var errs field.ErrorList
	for i := range in.Object.Spec.VolumeClaimTemplates {
		t := &in.Object.Spec.VolumeClaimTemplates[i]
		if _, ferr := templateClass(lk, t, vctPath.Index(i).Child("spec", "storageClassName")); ferr != nil {
			errs = append(errs, ferr)
		}
	}
	return errs
}

func checkStorageClassNotExpandable(in *Input[*appsv1.StatefulSet], lk Lookup) field.ErrorList {
	if in.Operation != admissionv1.Create {
		return nil
	}
	var errs field.ErrorList
	for i := range in.Object.Spec.VolumeClaimTemplates {
		t := &in.Object.Spec.VolumeClaimTemplates[i]
		path := vctPath.Index(i).Child("spec", "storageClassName")
		sc, ferr := templateClass(lk, t, path)
		if ferr != nil {
			if ferr.Type == field.ErrorTypeInternal {
				errs = append(errs, ferr)
			}
			continue // storage-class-not-found reports it
		}
		if sc == nil || ptr.Deref(sc.AllowVolumeExpansion, false) {
			continue
		}
		errs = append(errs, field.Invalid(path, sc.Name, fmt.Sprintf(
			"StorageClass %q does not set allowVolumeExpansion: true, so the volumes of template %q can never grow (a PVC resize is rejected); choose an expandable class now, before data lands on them, or have an administrator set allowVolumeExpansion: true on the class",
			sc.Name, t.Name)))
	}
	return errs
}

// createOrTemplateChanged reports whether the request creates the
// StatefulSet or changes its pod template: rules about the template speak
// then, not on every scale.
func createOrTemplateChanged(in *Input[*appsv1.StatefulSet]) bool {
	return in.Operation == admissionv1.Create || in.OldObject == nil || templateChanged(in)
}

func checkVolumeClaimTemplateUnmounted(in *Input[*appsv1.StatefulSet], _ Lookup) field.ErrorList {
	if !createOrTemplateChanged(in) {
		return nil
	}
	pod := &in.Object.Spec.Template.Spec
	used := map[string]bool{}
	for _, cs := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for _, c := range cs {
			for _, m := range c.VolumeMounts {
				used[m.Name] = true
			}
			for _, d := range c.VolumeDevices {
				used[d.Name] = true
			}
		}
	}
	var errs field.ErrorList
	for i, t := range in.Object.Spec.VolumeClaimTemplates {
		if used[t.Name] {
			continue
		}
		errs = append(errs, field.Invalid(vctPath.Index(i).Child("metadata", "name"), t.Name, fmt.Sprintf(
			"no container mounts it (no volumeMounts entry named %q), so every pod gets a PVC it never uses and writes its data to the container's filesystem, which is lost with the pod; add a volumeMounts entry named %q at the database's data directory",
			t.Name, t.Name)))
	}
	return errs
}

func checkPVCRetention(cfg *Config, in *Input[*appsv1.StatefulSet]) field.ErrorList {
	sts := in.Object
	policy := sts.Spec.PersistentVolumeClaimRetentionPolicy
	if policy == nil || len(sts.Spec.VolumeClaimTemplates) == 0 {
		return nil
	}
	if !createOrTemplateChanged(in) && equality.Semantic.DeepEqual(policy, in.OldObject.Spec.PersistentVolumeClaimRetentionPolicy) {
		return nil
	}
	var profile string
	for _, c := range sts.Spec.Template.Spec.Containers {
		if p := cfg.Profile(c.Image); p != nil {
			profile = p.Name
			break
		}
	}
	if profile == "" {
		return nil
	}
	base := field.NewPath("spec", "persistentVolumeClaimRetentionPolicy")
	var errs field.ErrorList
	if policy.WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		errs = append(errs, field.Invalid(base.Child("whenDeleted"), string(policy.WhenDeleted), fmt.Sprintf(
			"on a %s StatefulSet: deleting the StatefulSet (kubectl delete, helm uninstall) deletes its PVCs and the data on them; use Retain (the default) and delete PVCs by hand when you mean to",
			profile)))
	}
	if policy.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		errs = append(errs, field.Invalid(base.Child("whenScaled"), string(policy.WhenScaled), fmt.Sprintf(
			"on a %s StatefulSet: scaling down deletes the PVCs of the removed ordinals, and scaling back up starts those members with no data; use Retain (the default)",
			profile)))
	}
	return errs
}
