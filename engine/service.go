package engine

import (
	"fmt"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var (
	clusterIPPath       = field.NewPath("spec", "clusterIP")
	serviceSelectorPath = field.NewPath("spec", "selector")
	metadataNamePath    = field.NewPath("metadata", "name")
)

// serviceRules keep the pairing intact from the Service's side: a Service
// that a StatefulSet names as spec.serviceName must stay headless, keep
// selecting the pods and not disappear unnoticed.
func serviceRules() []Rule[*corev1.Service] {
	return []Rule[*corev1.Service]{
		{ID: HeadlessServiceNotHeadless, Check: checkServiceHeadless},
		{ID: HeadlessServiceSelectorChange, Check: checkServiceSelectorChange},
		{ID: HeadlessServiceDelete, Check: checkServiceDelete},
	}
}

func serviceMutators() []Mutator[*corev1.Service] {
	return []Mutator[*corev1.Service]{
		{ID: HeadlessServiceDefault, FindingAction: Warn, Mutate: mutateHeadlessDefault},
	}
}

// statefulSetsNaming returns the StatefulSets of namespace whose
// spec.serviceName is name, sorted by name, leaving out those being deleted.
func statefulSetsNaming(lk Lookup, namespace, name string, path *field.Path) ([]*appsv1.StatefulSet, *field.Error) {
	all, err := lk.StatefulSets(namespace)
	if err != nil {
		return nil, lookupFailed(path, "StatefulSets of namespace "+namespace, err)
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

func checkServiceHeadless(in *Input[*corev1.Service], lk Lookup) field.ErrorList {
	svc := in.Object
	if in.Operation == admissionv1.Delete || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil
	}
	users, ferr := statefulSetsNaming(lk, svc.Namespace, svc.Name, clusterIPPath)
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

func checkServiceSelectorChange(in *Input[*corev1.Service], lk Lookup) field.ErrorList {
	if in.Operation != admissionv1.Update {
		return nil
	}
	svc, old := in.Object, in.OldObject
	users, ferr := statefulSetsNaming(lk, svc.Namespace, svc.Name, serviceSelectorPath)
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

func checkServiceDelete(in *Input[*corev1.Service], lk Lookup) field.ErrorList {
	if in.Operation != admissionv1.Delete {
		return nil
	}
	svc := in.OldObject
	users, ferr := statefulSetsNaming(lk, svc.Namespace, svc.Name, metadataNamePath)
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

func mutateHeadlessDefault(in *Input[*corev1.Service], lk Lookup, m *Mutation) field.ErrorList {
	svc := in.Object
	if in.Operation != admissionv1.Create || svc.Spec.ClusterIP != "" || len(svc.Spec.ClusterIPs) > 0 ||
		(svc.Spec.Type != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP) {
		return nil
	}
	users, ferr := statefulSetsNaming(lk, svc.Namespace, svc.Name, clusterIPPath)
	if ferr != nil {
		return field.ErrorList{ferr}
	}
	if len(users) == 0 {
		return nil
	}
	svc.Spec.ClusterIP = corev1.ClusterIPNone
	m.Set(HeadlessServiceDefault, clusterIPPath, Pointer("spec", "clusterIP"), corev1.ClusterIPNone, fmt.Sprintf(
		`set to "None" (headless) because %s names this Service as its spec.serviceName; each pod gets the DNS name <pod>.%s.%s.svc`,
		stsNames(users), svc.Name, svc.Namespace))
	return nil
}
