package rules

import (
	"context"
	"fmt"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/resize"
)

// PVCSmallerThanTemplate is the ID of rule pvc-smaller-than-template.
const PVCSmallerThanTemplate = "pvc-smaller-than-template"

var pvcSmallerThanTemplate = engine.Rule{
	ID: PVCSmallerThanTemplate, Area: engine.AreaStorage, Action: engine.Warn,

	Description: "A StatefulSet CREATE finds PVCs under its names (left by a --cascade=orphan delete) that are smaller than its volumeClaimTemplates: the controller reuses them without resizing; the warning lists them and the `stsguard expand` command that grows them.",
	StatefulSet: checkPVCSmallerThanTemplate,
}

// checkPVCSmallerThanTemplate warns on CREATE when PVCs under the new
// StatefulSet's names already exist (the StatefulSet was deleted with
// --cascade=orphan, or re-created by a tool) and are smaller than its
// template: the controller reuses them as they are.
func checkPVCSmallerThanTemplate(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], lk engine.Lookup) field.ErrorList {
	sts := in.Object
	if in.Operation != admissionv1.Create || len(sts.Spec.VolumeClaimTemplates) == 0 {
		return nil
	}
	var errs field.ErrorList
	pvcs, err := lk.PersistentVolumeClaims(ctx, sts.Namespace)
	if err != nil {
		return field.ErrorList{engine.LookupFailed(vctPath, "PVCs", err)}
	}
	for i := range sts.Spec.VolumeClaimTemplates {
		t := &sts.Spec.VolumeClaimTemplates[i]
		want, ok := resize.StorageRequest(t)
		if !ok {
			continue
		}
		type small struct {
			ordinal int
			text    string
		}
		var smaller []small
		for _, pvc := range pvcs {
			n, ok := resize.ClaimOrdinal(pvc.Name, t.Name, sts.Name)
			if !ok {
				continue
			}
			have, _ := resize.StorageRequest(pvc)
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
		plan := resize.Plan{Namespace: sts.Namespace, StatefulSet: sts.Name, Template: t.Name, To: want}
		errs = append(errs, field.Invalid(requestPath(i), want.String(), fmt.Sprintf(
			"PVCs %s already exist under this StatefulSet's names and are smaller: the StatefulSet controller reuses them as they are and never resizes them; resize them with: %s",
			strings.Join(names, ", "), plan.Command())))
	}
	return errs
}
