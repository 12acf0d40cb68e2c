package rules

import (
	"context"
	"fmt"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// VolumeClaimTemplateImmutable is the ID of rule volume-claim-template-immutable.
const VolumeClaimTemplateImmutable = "volume-claim-template-immutable"

var volumeClaimTemplateImmutable = engine.Rule{
	ID: VolumeClaimTemplateImmutable, Area: engine.AreaStorage, Action: engine.Deny,

	Description: "An UPDATE changes volumeClaimTemplates other than by growing a storage request (class, access modes, labels, adding or removing a template); the denial names each changed field path and says how to re-create the StatefulSet instead. Judged in the mutating webhook.",
	StatefulSet: checkTemplateImmutable,
}

func checkTemplateImmutable(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], _ engine.Lookup) field.ErrorList {
	diffs, errs := diffTemplates(in)
	for _, d := range diffs {
		for _, p := range d.other {
			errs = append(errs, field.Forbidden(p, fmt.Sprintf(
				"volumeClaimTemplate %q cannot change after the StatefulSet is created (the apiserver forbids it, and existing PVCs would not follow anyway)", d.name)))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	advice := orphanAndRecreate(in.Object)
	for i := range errs {
		errs[i].Detail += "; " + advice
	}
	return errs
}

// changedPaths returns the JSON field paths at which a and b differ, below
// base, comparing their unstructured (JSON) forms with go-cmp. Lists are
// compared index by index (the element at [i] against the element at [i]),
// and a list whose length changed is reported as one path; status is left
// out.
func changedPaths(base *field.Path, a, b *corev1.PersistentVolumeClaim) []*field.Path {
	ua, errA := runtime.DefaultUnstructuredConverter.ToUnstructured(a)
	ub, errB := runtime.DefaultUnstructuredConverter.ToUnstructured(b)
	if errA != nil || errB != nil {
		return []*field.Path{base}
	}
	delete(ua, "status")
	delete(ub, "status")
	r := &pathReporter{base: base}
	cmp.Equal(ua, ub, byIndex, cmp.Reporter(r))
	if len(r.paths) == 0 { // only a status or formatting difference
		r.paths = append(r.paths, base)
	}
	return r.paths
}

// byIndex has go-cmp compare JSON lists element by element at the same
// index, as a map from index to element, instead of pairing elements by an
// edit script: a reordered list is a change at each index that changed.
var byIndex = cmp.Transformer("byIndex", func(l []any) map[int]any {
	m := make(map[int]any, len(l))
	for i, v := range l {
		m[i] = v
	}
	return m
})

// pathReporter is a go-cmp reporter that collects the field path of each
// difference, in the order go-cmp finds them (map keys sorted).
type pathReporter struct {
	base  *field.Path
	steps cmp.Path
	paths []*field.Path
}

func (r *pathReporter) PushStep(s cmp.PathStep) { r.steps = append(r.steps, s) }
func (r *pathReporter) PopStep()                { r.steps = r.steps[:len(r.steps)-1] }

func (r *pathReporter) Report(res cmp.Result) {
	if res.Equal() {
		return
	}
	p := r.base
	for _, s := range r.steps {
		switch s := s.(type) {
		case cmp.Transform:
			if x, y := s.Values(); x.Len() != y.Len() {
				r.add(p) // the list's length changed: the list is the change
				return
			}
		case cmp.MapIndex:
			if i, ok := s.Key().Interface().(int); ok {
				p = p.Index(i)
			} else {
				p = p.Child(fmt.Sprint(s.Key().Interface()))
			}
		}
	}
	r.add(p)
}

// add records p once.
func (r *pathReporter) add(p *field.Path) {
	if n := len(r.paths); n == 0 || r.paths[n-1].String() != p.String() {
		r.paths = append(r.paths, p)
	}
}
