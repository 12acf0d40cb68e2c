package rules

import (
	"context"
	"fmt"
	"reflect"
	"sort"

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
	advice := orphanAndRecreate(in.Object)
	for i := range errs {
		errs[i].Detail += "; " + advice
	}
	return errs
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
