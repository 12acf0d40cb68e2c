package engine

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The kube-apiserver forbids every change to spec.volumeClaimTemplates
// (ValidateStatefulSetUpdate in kubernetes pkg/apis/apps/validation) before
// validating webhooks run, so these rules only ever speak in the mutating
// webhook, which sees the request first: there they replace the apiserver's
// "spec: Forbidden: updates to statefulset spec for fields other than ..."
// with what changed and what to do instead.
func expansionRules() []Rule[*appsv1.StatefulSet] {
	return []Rule[*appsv1.StatefulSet]{
		{ID: VolumeClaimTemplateShrink, Check: checkTemplateShrink},
		{ID: VolumeClaimTemplateImmutable, Check: checkTemplateImmutable},
		{ID: VolumeClaimTemplateResize, Check: checkTemplateResize},
		{ID: StorageClassNotExpandable, Check: checkResizeNotExpandable, Action: Deny},
		{ID: PVCSmallerThanTemplate, Check: checkPVCSmallerThanTemplate},
	}
}

// templateDiff is how one volumeClaimTemplate (same index in the stored and
// the new StatefulSet) changed.
type templateDiff struct {
	index    int
	name     string
	from, to resource.Quantity // storage requests, when both are set
	// other are the paths of every other change, rooted at the template.
	other []*field.Path
}

func (d *templateDiff) grown() bool  { return d.to.Cmp(d.from) > 0 }
func (d *templateDiff) shrunk() bool { return d.to.Cmp(d.from) < 0 }

// requestPath is spec.volumeClaimTemplates[i].spec.resources.requests[storage].
func requestPath(i int) *field.Path {
	return vctPath.Index(i).Child("spec", "resources", "requests").Key(string(corev1.ResourceStorage))
}

// diffTemplates compares the volumeClaimTemplates of an UPDATE index by
// index, as the apiserver does. It returns nil, nil when they are
// semantically equal; added and removed templates are reported as
// Forbidden errors.
func diffTemplates(in *Input[*appsv1.StatefulSet]) ([]templateDiff, field.ErrorList) {
	if in.Operation != admissionv1.Update || in.OldObject == nil {
		return nil, nil
	}
	olds, news := in.OldObject.Spec.VolumeClaimTemplates, in.Object.Spec.VolumeClaimTemplates
	if equality.Semantic.DeepEqual(olds, news) {
		return nil, nil
	}
	var diffs []templateDiff
	var structural field.ErrorList
	for i := range max(len(olds), len(news)) {
		switch {
		case i >= len(olds):
			structural = append(structural, field.Forbidden(vctPath.Index(i), fmt.Sprintf(
				"adds volumeClaimTemplate %q to an existing StatefulSet", news[i].Name)))
			continue
		case i >= len(news):
			structural = append(structural, field.Forbidden(vctPath.Index(i), fmt.Sprintf(
				"removes volumeClaimTemplate %q from an existing StatefulSet", olds[i].Name)))
			continue
		}
		if equality.Semantic.DeepEqual(olds[i], news[i]) {
			continue
		}
		d := templateDiff{index: i, name: news[i].Name}
		o, n := olds[i].DeepCopy(), news[i].DeepCopy()
		from, okFrom := StorageRequest(o)
		to, okTo := StorageRequest(n)
		if okFrom && okTo {
			d.from, d.to = from, to
			n.Spec.Resources.Requests[corev1.ResourceStorage] = from
		}
		if !equality.Semantic.DeepEqual(o, n) {
			d.other = changedPaths(vctPath.Index(i), o, n)
		}
		diffs = append(diffs, d)
	}
	return diffs, structural
}

// changedPaths returns the JSON field paths at which a and b differ, below
// base, by walking their unstructured (JSON) forms. A list whose length
// changed is reported as one path.
func changedPaths(base *field.Path, a, b *corev1.PersistentVolumeClaim) []*field.Path {
	ua, errA := runtime.DefaultUnstructuredConverter.ToUnstructured(a)
	ub, errB := runtime.DefaultUnstructuredConverter.ToUnstructured(b)
	if errA != nil || errB != nil {
		return []*field.Path{base}
	}
	delete(ua, "status")
	delete(ub, "status")
	var out []*field.Path
	walkDiff(base, ua, ub, &out)
	if len(out) == 0 { // only a status or formatting difference
		out = append(out, base)
	}
	return out
}

func walkDiff(p *field.Path, a, b any, out *[]*field.Path) {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			*out = append(*out, p)
			return
		}
		keys := make([]string, 0, len(av)+len(bv))
		for k := range av {
			keys = append(keys, k)
		}
		for k := range bv {
			if _, ok := av[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			walkDiff(p.Child(k), av[k], bv[k], out)
		}
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			*out = append(*out, p)
			return
		}
		for i := range av {
			walkDiff(p.Index(i), av[i], bv[i], out)
		}
	default:
		if !reflect.DeepEqual(a, b) {
			*out = append(*out, p)
		}
	}
}

// orphanAndRecreate is the advice for a change to volumeClaimTemplates that
// `stsguard expand` does not cover.
func orphanAndRecreate(sts *appsv1.StatefulSet) string {
	return fmt.Sprintf("revert it; to really change the template, delete the StatefulSet while keeping its pods and PVCs (kubectl delete statefulset %s -n %s --cascade=orphan) and create it again: existing PVCs keep their old spec, only new ordinals get the new one",
		sts.Name, sts.Namespace)
}

func checkTemplateShrink(in *Input[*appsv1.StatefulSet], _ Lookup) field.ErrorList {
	diffs, _ := diffTemplates(in)
	var errs field.ErrorList
	for _, d := range diffs {
		if !d.shrunk() {
			continue
		}
		errs = append(errs, field.Invalid(requestPath(d.index), d.to.String(), fmt.Sprintf(
			"volumeClaimTemplate %q was created with %s: a PVC can never shrink and volumeClaimTemplates cannot change; keep %s (to use less space, move the data to a new StatefulSet)",
			d.name, d.from.String(), d.from.String())))
	}
	return errs
}

func checkTemplateImmutable(in *Input[*appsv1.StatefulSet], _ Lookup) field.ErrorList {
	diffs, errs := diffTemplates(in)
	for _, d := range diffs {
		for _, p := range d.other {
			errs = append(errs, field.Forbidden(p, fmt.Sprintf(
				"volumeClaimTemplate %q cannot change after the StatefulSet is created (the apiserver forbids it, and existing PVCs would not follow anyway)", d.name)))
		}
	}
	advice := orphanAndRecreate(in.Object)
	for i := range errs {
		errs[i].Detail += "; " + advice
	}
	return errs
}

// pureGrowth returns the templates an UPDATE grows when growing storage
// requests is all it does to volumeClaimTemplates; nil otherwise.
func pureGrowth(in *Input[*appsv1.StatefulSet]) []templateDiff {
	diffs, structural := diffTemplates(in)
	if len(structural) > 0 {
		return nil
	}
	var grown []templateDiff
	for _, d := range diffs {
		if len(d.other) > 0 || d.shrunk() {
			return nil
		}
		if d.grown() {
			grown = append(grown, d)
		}
	}
	return grown
}

func checkTemplateResize(in *Input[*appsv1.StatefulSet], lk Lookup) field.ErrorList {
	var errs field.ErrorList
	for _, d := range pureGrowth(in) {
		path := requestPath(d.index)
		plan, err := PlanResize(in.OldObject, d.name, d.to, lk)
		if err != nil {
			errs = append(errs, lookupFailed(path, "PVCs", err))
			continue
		}
		msg := fmt.Sprintf(
			"volumeClaimTemplates cannot change and the StatefulSet controller never resizes existing PVCs, so growing template %q from %s to %s takes a resize of each PVC and a re-create of the StatefulSet with its pods kept; run: %s; PVCs: %s",
			d.name, d.from.String(), d.to.String(), plan.Command(), plan.Summary())
		if problems := plan.Problems(); len(problems) > 0 {
			msg += "; it will refuse until: " + strings.Join(problems, "; ")
		}
		errs = append(errs, field.Forbidden(path, msg))
	}
	return errs
}

// checkResizeNotExpandable is storage-class-not-expandable on an UPDATE
// that grows a template: the StorageClass of the template or of an existing
// PVC does not allow expansion. Deny by default: the resize cannot work.
func checkResizeNotExpandable(in *Input[*appsv1.StatefulSet], lk Lookup) field.ErrorList {
	var errs field.ErrorList
	for _, d := range pureGrowth(in) {
		plan, err := PlanResize(in.OldObject, d.name, d.to, lk)
		if err != nil {
			errs = append(errs, lookupFailed(requestPath(d.index), "PVCs", err))
			continue
		}
		if plan.TemplateClass != "" && !plan.TemplateExpandable {
			errs = append(errs, field.Invalid(vctPath.Index(d.index).Child("spec", "storageClassName"), plan.TemplateClass, fmt.Sprintf(
				"StorageClass %q does not allow volume expansion (allowVolumeExpansion is not true), so template %q cannot grow to %s; have an administrator set allowVolumeExpansion: true on it if its storage driver supports expansion, or move the data to a StatefulSet on an expandable class",
				plan.TemplateClass, d.name, d.to.String())))
		}
		var stuck []string
		for _, c := range plan.Claims {
			if c.PVC != nil && !c.Expandable && c.NeedsResize(d.to) {
				class := "no StorageClass"
				if c.StorageClass != "" {
					class = fmt.Sprintf("StorageClass %q", c.StorageClass)
				}
				stuck = append(stuck, fmt.Sprintf("%s (%s)", c.Name, class))
			}
		}
		if len(stuck) > 0 {
			errs = append(errs, field.Forbidden(requestPath(d.index), fmt.Sprintf(
				"PVCs %s cannot be resized to %s: their StorageClass does not allow volume expansion or does not exist; have an administrator set allowVolumeExpansion: true on the class if its storage driver supports expansion",
				strings.Join(stuck, ", "), d.to.String())))
		}
	}
	return errs
}

// checkPVCSmallerThanTemplate warns on CREATE when PVCs under the new
// StatefulSet's names already exist (the StatefulSet was deleted with
// --cascade=orphan, or re-created by a tool) and are smaller than its
// template: the controller reuses them as they are.
func checkPVCSmallerThanTemplate(in *Input[*appsv1.StatefulSet], lk Lookup) field.ErrorList {
	sts := in.Object
	if in.Operation != admissionv1.Create || len(sts.Spec.VolumeClaimTemplates) == 0 {
		return nil
	}
	var errs field.ErrorList
	pvcs, err := lk.PersistentVolumeClaims(sts.Namespace)
	if err != nil {
		return field.ErrorList{lookupFailed(vctPath, "PVCs", err)}
	}
	for i := range sts.Spec.VolumeClaimTemplates {
		t := &sts.Spec.VolumeClaimTemplates[i]
		want, ok := StorageRequest(t)
		if !ok {
			continue
		}
		type small struct {
			ordinal int
			text    string
		}
		var smaller []small
		for _, pvc := range pvcs {
			n, ok := claimOrdinal(pvc.Name, t.Name, sts.Name)
			if !ok {
				continue
			}
			have, _ := StorageRequest(pvc)
			if c, ok := pvc.Status.Capacity[corev1.ResourceStorage]; ok && c.Cmp(have) > 0 {
				have = c
			}
			if have.Cmp(want) < 0 {
				smaller = append(smaller, small{n, fmt.Sprintf("%s (%s)", pvc.Name, have.String())})
			}
		}
		if len(smaller) == 0 {
			continue
		}
		sort.Slice(smaller, func(a, b int) bool { return smaller[a].ordinal < smaller[b].ordinal })
		names := make([]string, len(smaller))
		for j, s := range smaller {
			names[j] = s.text
		}
		plan := ResizePlan{Namespace: sts.Namespace, StatefulSet: sts.Name, Template: t.Name, To: want}
		errs = append(errs, field.Invalid(requestPath(i), want.String(), fmt.Sprintf(
			"PVCs %s already exist under this StatefulSet's names and are smaller: the StatefulSet controller reuses them as they are and never resizes them; resize them with: %s",
			strings.Join(names, ", "), plan.Command())))
	}
	return errs
}
