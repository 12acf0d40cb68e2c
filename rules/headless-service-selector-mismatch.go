package rules

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// HeadlessServiceSelectorMismatch is the ID of rule headless-service-selector-mismatch.
const HeadlessServiceSelectorMismatch = "headless-service-selector-mismatch"

var headlessServiceSelectorMismatch = engine.Rule{
	ID: HeadlessServiceSelectorMismatch, Area: engine.AreaPairing, Action: engine.Deny,

	Description: "The Service named by spec.serviceName has an empty selector or one that does not select the pod template's labels.",
	StatefulSet: checkHeadlessServiceSelector,
}

func checkHeadlessServiceSelector(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], lk engine.Lookup) field.ErrorList {
	sts := in.Object
	svc, ferr := governingService(ctx, sts, lk)
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
