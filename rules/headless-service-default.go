package rules

import (
	"context"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// HeadlessServiceDefault is the ID of rule headless-service-default.
const HeadlessServiceDefault = "headless-service-default"

var headlessServiceDefault = engine.Rule{
	ID: HeadlessServiceDefault, Area: engine.AreaPairing, Action: engine.Mutate,
	FindingAction: engine.Warn,
	Description:   `A Service created without spec.clusterIP under a name that a StatefulSet in its namespace uses as serviceName gets clusterIP: "None" (headless).`,
	MutateService: mutateHeadlessDefault,
}

func mutateHeadlessDefault(ctx context.Context, in *engine.Input[*corev1.Service], lk engine.Lookup, m *engine.Mutation) field.ErrorList {
	svc := in.Object
	if in.Operation != admissionv1.Create || svc.Spec.ClusterIP != "" || len(svc.Spec.ClusterIPs) > 0 ||
		(svc.Spec.Type != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP) {
		return nil
	}
	users, ferr := statefulSetsNaming(ctx, lk, svc.Namespace, svc.Name, clusterIPPath)
	if ferr != nil {
		return field.ErrorList{ferr}
	}
	if len(users) == 0 {
		return nil
	}
	svc.Spec.ClusterIP = corev1.ClusterIPNone
	m.Set(HeadlessServiceDefault, clusterIPPath, engine.Pointer("spec", "clusterIP"), corev1.ClusterIPNone, fmt.Sprintf(
		`set to "None" (headless) because %s names this Service as its spec.serviceName; each pod gets the DNS name <pod>.%s.%s.svc`,
		stsNames(users), svc.Name, svc.Namespace))
	return nil
}
