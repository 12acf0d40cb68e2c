package rules

import (
	"context"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// HeadlessServiceDelete is the ID of rule headless-service-delete.
const HeadlessServiceDelete = "headless-service-delete"

var headlessServiceDelete = engine.Rule{
	ID: HeadlessServiceDelete, Area: engine.AreaPairing, Action: engine.Warn,

	Description: "DELETE of a Service that a StatefulSet names as its serviceName. Warn by default because Helm and kubectl delete Services before StatefulSets on uninstall; set Deny to protect running databases.",
	Service:     checkServiceDelete,
}

func checkServiceDelete(ctx context.Context, in *engine.Input[*corev1.Service], lk engine.Lookup) field.ErrorList {
	if in.Operation != admissionv1.Delete {
		return nil
	}
	svc := in.OldObject
	users, ferr := statefulSetsNaming(ctx, lk, svc.Namespace, svc.Name, metadataNamePath)
	if ferr != nil {
		return field.ErrorList{ferr}
	}
	if len(users) == 0 {
		return nil
	}
	return field.ErrorList{field.Forbidden(metadataNamePath, fmt.Sprintf(
		"Service %q is the governing Service of %s: its pods lose their DNS names and clustered databases lose their peers until the Service is re-created; delete the StatefulSet first, or re-create the Service right away",
		svc.Name, stsNames(users)))}
}
