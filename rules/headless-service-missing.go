package rules

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// HeadlessServiceMissing is the ID of rule headless-service-missing.
const HeadlessServiceMissing = "headless-service-missing"

var headlessServiceMissing = engine.Rule{
	ID: HeadlessServiceMissing, Area: engine.AreaPairing, Action: engine.Warn,

	Description: "spec.serviceName names no Service in the StatefulSet's namespace. Warn: kubectl apply -f may create the StatefulSet before its Service.",
	StatefulSet: checkHeadlessServiceMissing,
}

func checkHeadlessServiceMissing(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], lk engine.Lookup) field.ErrorList {
	sts := in.Object
	if sts.Spec.ServiceName == "" {
		return nil
	}
	_, err := lk.Service(ctx, sts.Namespace, sts.Spec.ServiceName)
	switch {
	case err == nil:
		return nil
	case !apierrors.IsNotFound(err):
		return field.ErrorList{engine.LookupFailed(serviceNamePath, fmt.Sprintf("Service %s/%s", sts.Namespace, sts.Spec.ServiceName), err)}
	}
	e := field.NotFound(serviceNamePath, sts.Spec.ServiceName)
	e.Detail = fmt.Sprintf("no Service %q in namespace %q; create a headless Service (clusterIP: None) named %q that selects %s, or the pods get no stable DNS names",
		sts.Spec.ServiceName, sts.Namespace, sts.Spec.ServiceName, describeLabels(sts.Spec.Template.Labels))
	return field.ErrorList{e}
}
