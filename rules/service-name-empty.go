package rules

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// ServiceNameEmpty is the ID of rule service-name-empty.
const ServiceNameEmpty = "service-name-empty"

var serviceNameEmpty = engine.Rule{
	ID: ServiceNameEmpty, Area: engine.AreaPairing, Action: engine.Warn,

	Description: "spec.serviceName is empty, so the pods get no stable DNS names (<pod>.<serviceName>.<namespace>.svc).",
	StatefulSet: checkServiceNameEmpty,
}

func checkServiceNameEmpty(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], _ engine.Lookup) field.ErrorList {
	if in.Object.Spec.ServiceName != "" {
		return nil
	}
	return field.ErrorList{field.Required(serviceNamePath,
		fmt.Sprintf("without a governing Service the pods get no stable DNS names; create a headless Service (clusterIP: None) that selects %s and set spec.serviceName to its name",
			describeLabels(in.Object.Spec.Template.Labels)))}
}
