package podrefs

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// SecretRef is one reference of a pod spec to a Secret.
type SecretRef struct {
	// Path is the field path of the reference, under the pod spec's path
	// given to SecretRefs (spec.template.spec.containers[0].env[1].valueFrom.secretKeyRef).
	Path *field.Path
	// Secret is the name of the Secret, in the pod's namespace.
	Secret string
	// Key is the referenced key; "" for a reference to the whole Secret
	// (envFrom, a volume without items, imagePullSecrets).
	Key string
	// Optional is true when the pod starts without the Secret or key.
	Optional bool
	// EnvName is the env var the key is read into (env references only).
	EnvName string
	// Image is the image of the container of an env reference.
	Image string
}

// Container is one init container or container of a pod spec.
type Container struct {
	// C is the container, inside the pod spec (not a copy).
	C *corev1.Container
	// List is "initContainers" or "containers"; Index its position there.
	List  string
	Index int
	// Path is its field path, under the pod spec's path given to Containers.
	Path *field.Path
}

// Containers returns the init containers and then the containers of pod,
// with field paths under podPath, the path of the pod spec itself.
func Containers(pod *corev1.PodSpec, podPath *field.Path) []Container {
	out := make([]Container, 0, len(pod.InitContainers)+len(pod.Containers))
	for _, g := range []struct {
		name string
		list []corev1.Container
	}{{"initContainers", pod.InitContainers}, {"containers", pod.Containers}} {
		for i := range g.list {
			out = append(out, Container{C: &g.list[i], List: g.name, Index: i, Path: podPath.Child(g.name).Index(i)})
		}
	}
	return out
}

// SecretRefs returns every reference of pod to a Secret, in field order,
// with field paths under podPath, the path of the pod spec itself:
// env valueFrom.secretKeyRef and envFrom secretRef of init containers and
// containers, secret and projected volumes (one reference per item, or one
// for the whole Secret) and imagePullSecrets. This is the set of references
// the kubelet resolves before a container can start.
func SecretRefs(pod *corev1.PodSpec, podPath *field.Path) []SecretRef {
	var out []SecretRef
	for _, pc := range Containers(pod, podPath) {
		c, cp := pc.C, pc.Path
		for j, e := range c.Env {
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				continue
			}
			ref := e.ValueFrom.SecretKeyRef
			out = append(out, SecretRef{Path: cp.Child("env").Index(j).Child("valueFrom", "secretKeyRef"),
				Secret: ref.Name, Key: ref.Key, Optional: ptr.Deref(ref.Optional, false), EnvName: e.Name, Image: c.Image})
		}
		for j, e := range c.EnvFrom {
			if e.SecretRef == nil {
				continue
			}
			out = append(out, SecretRef{Path: cp.Child("envFrom").Index(j).Child("secretRef"),
				Secret: e.SecretRef.Name, Optional: ptr.Deref(e.SecretRef.Optional, false)})
		}
	}
	for i, v := range pod.Volumes {
		vp := podPath.Child("volumes").Index(i)
		if s := v.Secret; s != nil {
			out = append(out, itemRefs(vp.Child("secret"), s.SecretName, s.Items, ptr.Deref(s.Optional, false))...)
		}
		if p := v.Projected; p != nil {
			for j, src := range p.Sources {
				if s := src.Secret; s != nil {
					out = append(out, itemRefs(vp.Child("projected", "sources").Index(j).Child("secret"), s.Name, s.Items, ptr.Deref(s.Optional, false))...)
				}
			}
		}
	}
	for i, s := range pod.ImagePullSecrets {
		out = append(out, SecretRef{Path: podPath.Child("imagePullSecrets").Index(i), Secret: s.Name})
	}
	return out
}

func itemRefs(path *field.Path, secret string, items []corev1.KeyToPath, optional bool) []SecretRef {
	if len(items) == 0 {
		return []SecretRef{{Path: path, Secret: secret, Optional: optional}}
	}
	out := make([]SecretRef, 0, len(items))
	for i, it := range items {
		out = append(out, SecretRef{Path: path.Child("items").Index(i), Secret: secret, Key: it.Key, Optional: optional})
	}
	return out
}

// SecretNames returns the names of the Secrets pod references (those of
// SecretRefs, optional ones included), each once and sorted; nil when there
// are none. They are the keys of the cache index of StatefulSets by Secret.
func SecretNames(pod *corev1.PodSpec) []string {
	refs := SecretRefs(pod, nil)
	if len(refs) == 0 {
		return nil
	}
	names := sets.New[string]()
	for _, r := range refs {
		names.Insert(r.Secret)
	}
	return sets.List(names)
}

// References reports whether pod references Secret secret (any reference
// SecretRefs reports, optional ones included).
func References(pod *corev1.PodSpec, secret string) bool {
	for _, r := range SecretRefs(pod, nil) {
		if r.Secret == secret {
			return true
		}
	}
	return false
}

// StatefulSetsReferencing returns the StatefulSets of all whose pod template
// references Secret secret, in their order in all; nil when there are none.
func StatefulSetsReferencing(all []*appsv1.StatefulSet, secret string) []*appsv1.StatefulSet {
	var out []*appsv1.StatefulSet
	for _, sts := range all {
		if References(&sts.Spec.Template.Spec, secret) {
			out = append(out, sts)
		}
	}
	return out
}
