package rules

import (
	"context"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/resize"
)

// StorageClassNotExpandable is the ID of rule storage-class-not-expandable.
const StorageClassNotExpandable = "storage-class-not-expandable"

var storageClassNotExpandable = engine.Rule{
	ID: StorageClassNotExpandable, Area: engine.AreaStorage, Action: engine.Warn,
	ActionOnUpdate: engine.Deny,
	Description:    "The StorageClass of a volumeClaimTemplate does not set allowVolumeExpansion: true, so these volumes can never grow. Warn on CREATE; Deny on an UPDATE that grows the template, when the class of the template or of an existing PVC cannot expand (a policy action applies to both).",
	StatefulSet:    checkStorageClassNotExpandable,
}

// checkStorageClassNotExpandable judges the class of each
// volumeClaimTemplate on CREATE (Warn: the volumes can never grow), and on an
// UPDATE that grows a template the classes the resize needs
// (checkResizeNotExpandable; Deny, the rule's ActionOnUpdate: the resize
// cannot work).
func checkStorageClassNotExpandable(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], lk engine.Lookup) field.ErrorList {
	switch in.Operation {
	case admissionv1.Update:
		return checkResizeNotExpandable(ctx, in, lk)
	case admissionv1.Create:
	default:
		return nil
	}
	var errs field.ErrorList
	for i := range in.Object.Spec.VolumeClaimTemplates {
		t := &in.Object.Spec.VolumeClaimTemplates[i]
		path := vctPath.Index(i).Child("spec", "storageClassName")
		sc, ferr := resize.TemplateClass(ctx, lk, t, path)
		if ferr != nil {
			if ferr.Type == field.ErrorTypeInternal {
				errs = append(errs, ferr)
			}
			continue // storage-class-not-found reports it
		}
		if sc == nil || ptr.Deref(sc.AllowVolumeExpansion, false) {
			continue
		}
		errs = append(errs, field.Invalid(path, sc.Name, fmt.Sprintf(
			"StorageClass %q does not set allowVolumeExpansion: true, so the volumes of template %q can never grow (a PVC resize is rejected); choose an expandable class now, before data lands on them, or have an administrator set allowVolumeExpansion: true on the class",
			sc.Name, t.Name)))
	}
	return errs
}

// checkResizeNotExpandable is storage-class-not-expandable on an UPDATE
// that grows a template: the StorageClass of the template or of an existing
// PVC does not allow expansion. Deny by default: the resize cannot work.
func checkResizeNotExpandable(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], lk engine.Lookup) field.ErrorList {
	var errs field.ErrorList
	for _, d := range pureGrowth(in) {
		plan, err := resize.New(ctx, in.OldObject, d.name, d.to, lk)
		if err != nil {
			errs = append(errs, engine.LookupFailed(requestPath(d.index), "PVCs", err))
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
