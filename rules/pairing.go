package rules

import (
	"context"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

var serviceNamePath = field.NewPath("spec", "serviceName")

// governingService returns the Service named by spec.serviceName, nil when
// serviceName is empty or names nothing, or an internal error.
func governingService(ctx context.Context, sts *appsv1.StatefulSet, lk engine.Lookup) (*corev1.Service, *field.Error) {
	if sts.Spec.ServiceName == "" {
		return nil, nil
	}
	svc, err := lk.Service(ctx, sts.Namespace, sts.Spec.ServiceName)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, engine.LookupFailed(serviceNamePath, fmt.Sprintf("Service %s/%s", sts.Namespace, sts.Spec.ServiceName), err)
	}
	return svc, nil
}

// describeLabels renders a label set for a message, sorted by key.
func describeLabels(set map[string]string) string {
	if len(set) == 0 {
		return "the pod template labels (none are set)"
	}
	return labels.Set(set).String()
}

var (
	clusterIPPath       = field.NewPath("spec", "clusterIP")
	serviceSelectorPath = field.NewPath("spec", "selector")
	metadataNamePath    = field.NewPath("metadata", "name")
)

// statefulSetsNaming returns the StatefulSets of namespace whose
// spec.serviceName is name, sorted by name, leaving out those being deleted.
func statefulSetsNaming(ctx context.Context, lk engine.Lookup, namespace, name string, path *field.Path) ([]*appsv1.StatefulSet, *field.Error) {
	all, err := lk.StatefulSets(ctx, namespace)
	if err != nil {
		return nil, engine.LookupFailed(path, "StatefulSets of namespace "+namespace, err)
	}
	var out []*appsv1.StatefulSet
	for _, sts := range all {
		if sts.Spec.ServiceName == name && sts.DeletionTimestamp == nil {
			out = append(out, sts)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// stsNames renders StatefulSet names for a message: `StatefulSet "db"` or
// `StatefulSets "a", "b"`.
func stsNames(list []*appsv1.StatefulSet) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s.Name)
	}
	if len(q) == 1 {
		return "StatefulSet " + q[0]
	}
	return "StatefulSets " + strings.Join(q, ", ")
}

// selects reports whether a Service selector selects pods labelled
// podLabels. An empty selector selects no pods (the Service then has no
// endpoints managed for it).
func selects(selector, podLabels map[string]string) bool {
	return len(selector) > 0 && labels.SelectorFromSet(selector).Matches(labels.Set(podLabels))
}
