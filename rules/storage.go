package rules

import (
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/resize"
)

// templateDiff is how one volumeClaimTemplate (same index in the stored and
// the new StatefulSet) changed.
type templateDiff struct {
	index    int
	name     string
	from, to resource.Quantity // storage requests, when both are set
	// other are the paths of every other change, rooted at the template.
	other []*field.Path
}

func (d *templateDiff) grown() bool { return d.to.Cmp(d.from) > 0 }

func (d *templateDiff) shrunk() bool { return d.to.Cmp(d.from) < 0 }

// requestPath is spec.volumeClaimTemplates[i].spec.resources.requests[storage].
func requestPath(i int) *field.Path {
	return vctPath.Index(i).Child("spec", "resources", "requests").Key(string(corev1.ResourceStorage))
}

// diffTemplates compares the volumeClaimTemplates of an UPDATE index by
// index, as the apiserver does. It returns nil, nil when they are
// semantically equal; added and removed templates are reported as
// Forbidden errors.
func diffTemplates(in *engine.Input[*appsv1.StatefulSet]) ([]templateDiff, field.ErrorList) {
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
		from, okFrom := resize.StorageRequest(o)
		to, okTo := resize.StorageRequest(n)
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

// orphanAndRecreate is the advice for a change to volumeClaimTemplates that
// `stsguard expand` does not cover.
func orphanAndRecreate(sts *appsv1.StatefulSet) string {
	return fmt.Sprintf("revert it; to really change the template, delete the StatefulSet while keeping its pods and PVCs (kubectl delete statefulset %s -n %s --cascade=orphan) and create it again: existing PVCs keep their old spec, only new ordinals get the new one",
		sts.Name, sts.Namespace)
}

// pureGrowth returns the templates an UPDATE grows when growing storage
// requests is all it does to volumeClaimTemplates; nil otherwise.
func pureGrowth(in *engine.Input[*appsv1.StatefulSet]) []templateDiff {
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

var vctPath = field.NewPath("spec", "volumeClaimTemplates")

// createOrTemplateChanged reports whether the request creates the
// StatefulSet or changes its pod template: rules about the template speak
// then, not on every scale.
func createOrTemplateChanged(in *engine.Input[*appsv1.StatefulSet]) bool {
	return in.Operation == admissionv1.Create || in.OldObject == nil || templateChanged(in)
}
