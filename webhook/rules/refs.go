package rules

import (
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// secretRef is one reference of a pod template to a Secret.
type secretRef struct {
	// Path is the field path of the reference, rooted at the StatefulSet
	// (spec.template.spec.containers[0].env[1].valueFrom.secretKeyRef).
	Path *field.Path
	// Secret is the name of the Secret, in the StatefulSet's namespace.
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

var podSpecPath = field.NewPath("spec", "template", "spec")

// podContainer is one init container or container of a pod template.
type podContainer struct {
	// C is the container, inside the pod spec (not a copy).
	C *corev1.Container
	// List is "initContainers" or "containers"; Index its position there.
	List  string
	Index int
	// Path is its field path, rooted at the StatefulSet.
	Path *field.Path
}

// podContainers returns the init containers and then the containers of pod.
func podContainers(pod *corev1.PodSpec) []podContainer {
	out := make([]podContainer, 0, len(pod.InitContainers)+len(pod.Containers))
	for _, g := range []struct {
		name string
		list []corev1.Container
	}{{"initContainers", pod.InitContainers}, {"containers", pod.Containers}} {
		for i := range g.list {
			out = append(out, podContainer{C: &g.list[i], List: g.name, Index: i, Path: podSpecPath.Child(g.name).Index(i)})
		}
	}
	return out
}

// secretRefs returns every reference of pod to a Secret, in field order:
// env valueFrom.secretKeyRef and envFrom secretRef of init containers and
// containers, secret and projected volumes (one reference per item, or one
// for the whole Secret) and imagePullSecrets. This is the set of references
// the kubelet resolves before a container can start.
func secretRefs(pod *corev1.PodSpec) []secretRef {
	var out []secretRef
	for _, pc := range podContainers(pod) {
		c, cp := pc.C, pc.Path
		for j, e := range c.Env {
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				continue
			}
			ref := e.ValueFrom.SecretKeyRef
			out = append(out, secretRef{Path: cp.Child("env").Index(j).Child("valueFrom", "secretKeyRef"),
				Secret: ref.Name, Key: ref.Key, Optional: ptr.Deref(ref.Optional, false), EnvName: e.Name, Image: c.Image})
		}
		for j, e := range c.EnvFrom {
			if e.SecretRef == nil {
				continue
			}
			out = append(out, secretRef{Path: cp.Child("envFrom").Index(j).Child("secretRef"),
				Secret: e.SecretRef.Name, Optional: ptr.Deref(e.SecretRef.Optional, false)})
		}
	}
	for i, v := range pod.Volumes {
		vp := podSpecPath.Child("volumes").Index(i)
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
		out = append(out, secretRef{Path: podSpecPath.Child("imagePullSecrets").Index(i), Secret: s.Name})
	}
	return out
}

func itemRefs(path *field.Path, secret string, items []corev1.KeyToPath, optional bool) []secretRef {
	if len(items) == 0 {
		return []secretRef{{Path: path, Secret: secret, Optional: optional}}
	}
	out := make([]secretRef, 0, len(items))
	for i, it := range items {
		out = append(out, secretRef{Path: path.Child("items").Index(i), Secret: secret, Key: it.Key, Optional: optional})
	}
	return out
}

// secretUser is a StatefulSet and its references to one Secret.
type secretUser struct {
	sts  *appsv1.StatefulSet
	refs []secretRef
}

// describe renders the user for a message: `StatefulSet "db" (spec.template...)`.
func (u secretUser) describe() string {
	s := fmt.Sprintf("StatefulSet %q (", u.sts.Name)
	for i, r := range u.refs {
		if i > 0 {
			s += ", "
		}
		s += r.Path.String()
	}
	return s + ")"
}

// secretUsers returns the StatefulSets of namespace that reference Secret
// name, with the references that match keep, sorted by StatefulSet name and
// leaving out StatefulSets being deleted and those with no matching
// reference.
func secretUsers(lk Lookup, namespace, name string, path *field.Path, keep func(secretRef) bool) ([]secretUser, *field.Error) {
	all, err := lk.StatefulSets(namespace)
	if err != nil {
		return nil, lookupFailed(path, "StatefulSets of namespace "+namespace, err)
	}
	var out []secretUser
	for _, sts := range all {
		if sts.DeletionTimestamp != nil {
			continue
		}
		var refs []secretRef
		for _, r := range secretRefs(&sts.Spec.Template.Spec) {
			if r.Secret == name && keep(r) {
				refs = append(refs, r)
			}
		}
		if len(refs) > 0 {
			out = append(out, secretUser{sts: sts, refs: refs})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].sts.Name < out[j].sts.Name })
	return out, nil
}
