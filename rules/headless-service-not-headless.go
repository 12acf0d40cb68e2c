package rules

import (
	"context"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// HeadlessServiceNotHeadless is the ID of rule headless-service-not-headless.
const HeadlessServiceNotHeadless = "headless-service-not-headless"

var headlessServiceNotHeadless = engine.Rule{
	ID: HeadlessServiceNotHeadless, Area: engine.AreaPairing, Action: engine.Deny,

	Description: `The Service named by a StatefulSet's spec.serviceName is not headless (spec.clusterIP is not "None"), so the pods get no per-pod DNS records. Checked when the StatefulSet is written and when the Service is.`,
	StatefulSet: checkHeadlessServiceNotHeadless,
	Service:     checkServiceHeadless,
}

func checkHeadlessServiceNotHeadless(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], lk engine.Lookup) field.ErrorList {
	svc, ferr := governingService(ctx, in.Object, lk)
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

func checkServiceHeadless(ctx context.Context, in *engine.Input[*corev1.Service], lk engine.Lookup) field.ErrorList {
	svc := in.Object
	if in.Operation == admissionv1.Delete || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil
	}
	users, ferr := statefulSetsNaming(ctx, lk, svc.Namespace, svc.Name, clusterIPPath)
	if ferr != nil {
		return field.ErrorList{ferr}
	}
	if len(users) == 0 {
		return nil
	}
	why := fmt.Sprintf("%s names Service %q as its spec.serviceName, so the Service must be headless for the pods to get DNS names <pod>.%s.%s.svc",
		stsNames(users), svc.Name, svc.Name, svc.Namespace)
	switch {
	case svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer || svc.Spec.Type == corev1.ServiceTypeExternalName:
		return field.ErrorList{field.Invalid(field.NewPath("spec", "type"), string(svc.Spec.Type), why+
			"; a Service of this type cannot be headless: give this Service another name for outside access and create a ClusterIP Service with clusterIP: None under this name")}
	case svc.Spec.ClusterIP == "":
		return field.ErrorList{field.Required(clusterIPPath, why+`; set spec.clusterIP: "None"`)}
	default:
		return field.ErrorList{field.Invalid(clusterIPPath, svc.Spec.ClusterIP, why+
			`; spec.clusterIP cannot be changed in place: delete the Service and re-create it with spec.clusterIP: "None"`)}
	}
}
