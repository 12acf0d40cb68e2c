package rules

import (
	"context"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/podrefs"
)

// secretRef is one reference of a pod template to a Secret, with its field
// path rooted at the StatefulSet.
type secretRef = podrefs.SecretRef

var podSpecPath = field.NewPath("spec", "template", "spec")

// podContainer is one init container or container of a pod template.
type podContainer = podrefs.Container

// podContainers returns the init containers and then the containers of pod,
// with field paths rooted at the StatefulSet.
func podContainers(pod *corev1.PodSpec) []podContainer {
	return podrefs.Containers(pod, podSpecPath)
}

// secretRefs returns every reference of pod to a Secret, in field order,
// with field paths rooted at the StatefulSet (see podrefs.SecretRefs).
func secretRefs(pod *corev1.PodSpec) []secretRef {
	return podrefs.SecretRefs(pod, podSpecPath)
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
func secretUsers(ctx context.Context, lk engine.Lookup, namespace, name string, path *field.Path, keep func(secretRef) bool) ([]secretUser, *field.Error) {
	all, err := lk.StatefulSetsReferencingSecret(ctx, namespace, name)
	if err != nil {
		return nil, engine.LookupFailed(path, "StatefulSets of namespace "+namespace+" referencing Secret "+name, err)
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

var dataPath = field.NewPath("data")

// secretCache remembers the Secrets one check has read.
type secretCache struct {
	lk        engine.Lookup
	namespace string
	seen      map[string]*corev1.Secret // nil value: not found
}

func (c *secretCache) get(ctx context.Context, name string) (*corev1.Secret, error) {
	if s, ok := c.seen[name]; ok {
		return s, nil
	}
	s, err := c.lk.Secret(ctx, c.namespace, name)
	switch {
	case apierrors.IsNotFound(err):
		s = nil
	case err != nil:
		return nil, err
	}
	if c.seen == nil {
		c.seen = map[string]*corev1.Secret{}
	}
	c.seen[name] = s
	return s, nil
}

// describeKeys lists a Secret's keys (never values) for a message.
func describeKeys(data map[string][]byte) string {
	if len(data) == 0 {
		return "no keys"
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, fmt.Sprintf("%q", k))
	}
	sort.Strings(keys)
	return "keys " + strings.Join(keys, ", ")
}
