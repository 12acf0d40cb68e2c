package rules

import (
	"context"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// HeadlessServiceSelectorChange is the ID of rule headless-service-selector-change.
const HeadlessServiceSelectorChange = "headless-service-selector-change"

var headlessServiceSelectorChange = engine.Rule{
	ID: HeadlessServiceSelectorChange, Area: engine.AreaPairing, Action: engine.Deny,

	Description: "A Service UPDATE changes the selector so that it no longer selects the pod template labels of a StatefulSet that names the Service: the pods would lose their DNS records.",
	Service:     checkServiceSelectorChange,
}

func checkServiceSelectorChange(ctx context.Context, in *engine.Input[*corev1.Service], lk engine.Lookup) field.ErrorList {
	if in.Operation != admissionv1.Update {
		return nil
	}
	svc, old := in.Object, in.OldObject
	users, ferr := statefulSetsNaming(ctx, lk, svc.Namespace, svc.Name, serviceSelectorPath)
	if ferr != nil {
		return field.ErrorList{ferr}
	}
	var lost []*appsv1.StatefulSet
	for _, sts := range users {
		podLabels := sts.Spec.Template.Labels
		if selects(old.Spec.Selector, podLabels) && !selects(svc.Spec.Selector, podLabels) {
			lost = append(lost, sts)
		}
	}
	if len(lost) == 0 {
		return nil
	}
	return field.ErrorList{field.Invalid(serviceSelectorPath, labels.Set(svc.Spec.Selector).String(), fmt.Sprintf(
		"no longer selects the pods of %s (pod template labels %s), so they would lose their DNS records and their peers could no longer find them; keep a selector that matches those labels (for example %s), or change the StatefulSet's labels first",
		stsNames(lost), describeLabels(lost[0].Spec.Template.Labels), labels.Set(old.Spec.Selector).String()))}
}
