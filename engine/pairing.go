package engine

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var serviceNamePath = field.NewPath("spec", "serviceName")

// pairingRules check that a StatefulSet's spec.serviceName names a headless
// Service that selects its pods: the governing Service that gives each pod
// its DNS name <pod>.<serviceName>.<namespace>.svc (see "Stable Network ID"
// in the StatefulSet concepts documentation).
func pairingRules() []Rule[*appsv1.StatefulSet] {
	return []Rule[*appsv1.StatefulSet]{
		{ID: ServiceNameEmpty, Check: checkServiceNameEmpty},
		{ID: HeadlessServiceMissing, Check: checkHeadlessServiceMissing},
		{ID: HeadlessServiceNotHeadless, Check: checkHeadlessServiceNotHeadless},
		{ID: HeadlessServiceSelectorMismatch, Check: checkHeadlessServiceSelector},
	}
}

func checkServiceNameEmpty(in *Input[*appsv1.StatefulSet], _ Lookup) field.ErrorList {
	if in.Object.Spec.ServiceName != "" {
		return nil
	}
	return field.ErrorList{field.Required(serviceNamePath,
		fmt.Sprintf("without a governing Service the pods get no stable DNS names; create a headless Service (clusterIP: None) that selects %s and set spec.serviceName to its name",
			describeLabels(in.Object.Spec.Template.Labels)))}
}

// governingService returns the Service named by spec.serviceName, nil when
// serviceName is empty or names nothing, or an internal error.
func governingService(sts *appsv1.StatefulSet, lk Lookup) (*corev1.Service, *field.Error) {
	if sts.Spec.ServiceName == "" {
		return nil, nil
	}
	svc, err := lk.Service(sts.Namespace, sts.Spec.ServiceName)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, lookupFailed(serviceNamePath, fmt.Sprintf("Service %s/%s", sts.Namespace, sts.Spec.ServiceName), err)
	}
	return svc, nil
}

func checkHeadlessServiceMissing(in *Input[*appsv1.StatefulSet], lk Lookup) field.ErrorList {
	sts := in.Object
	if sts.Spec.ServiceName == "" {
		return nil
	}
	_, err := lk.Service(sts.Namespace, sts.Spec.ServiceName)
	switch {
	case err == nil:
		return nil
	case !apierrors.IsNotFound(err):
		return field.ErrorList{lookupFailed(serviceNamePath, fmt.Sprintf("Service %s/%s", sts.Namespace, sts.Spec.ServiceName), err)}
	}
	e := field.NotFound(serviceNamePath, sts.Spec.ServiceName)
	e.Detail = fmt.Sprintf("no Service %q in namespace %q; create a headless Service (clusterIP: None) named %q that selects %s, or the pods get no stable DNS names",
		sts.Spec.ServiceName, sts.Namespace, sts.Spec.ServiceName, describeLabels(sts.Spec.Template.Labels))
	return field.ErrorList{e}
}

func checkHeadlessServiceNotHeadless(in *Input[*appsv1.StatefulSet], lk Lookup) field.ErrorList {
	svc, ferr := governingService(in.Object, lk)
	if ferr != nil {
		return field.ErrorList{ferr}
	}
	if svc == nil || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil
	}
	current := fmt.Sprintf("spec.clusterIP is %q", svc.Spec.ClusterIP)
	if svc.Spec.ClusterIP == "" {
		current = fmt.Sprintf("spec.type is %q", svc.Spec.Type)
	}
	return field.ErrorList{field.Invalid(serviceNamePath, svc.Name, fmt.Sprintf(
		"Service %q is not headless (%s), so the pods get no per-pod DNS records; a StatefulSet's governing Service needs clusterIP: None, and clusterIP cannot be changed in place: delete the Service and re-create it with spec.clusterIP: None",
		svc.Name, current))}
}

func checkHeadlessServiceSelector(in *Input[*appsv1.StatefulSet], lk Lookup) field.ErrorList {
	sts := in.Object
	svc, ferr := governingService(sts, lk)
	if ferr != nil {
		return field.ErrorList{ferr}
	}
	if svc == nil {
		return nil
	}
	podLabels := sts.Spec.Template.Labels
	if len(svc.Spec.Selector) == 0 {
		return field.ErrorList{field.Invalid(serviceNamePath, svc.Name, fmt.Sprintf(
			"Service %q has no selector, so it selects no pods and publishes no DNS records for them; set its spec.selector to the pod template labels, for example %s",
			svc.Name, describeLabels(podLabels)))}
	}
	if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(podLabels)) {
		return nil
	}
	return field.ErrorList{field.Invalid(serviceNamePath, svc.Name, fmt.Sprintf(
		"Service %q selects %s, which does not match the pod template labels %s; change the Service's spec.selector or the StatefulSet's spec.template.metadata.labels so that they match",
		svc.Name, labels.Set(svc.Spec.Selector).String(), describeLabels(podLabels)))}
}

// describeLabels renders a label set for a message, sorted by key.
func describeLabels(set map[string]string) string {
	if len(set) == 0 {
		return "the pod template labels (none are set)"
	}
	return labels.Set(set).String()
}
