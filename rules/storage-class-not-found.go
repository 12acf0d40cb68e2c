package rules

import (
	"context"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/resize"
)

// StorageClassNotFound is the ID of rule storage-class-not-found.
const StorageClassNotFound = "storage-class-not-found"

var storageClassNotFound = engine.Rule{
	ID: StorageClassNotFound, Area: engine.AreaStorage, Action: engine.Warn,

	Description: "A volumeClaimTemplate names a StorageClass that does not exist, or names none and the cluster has no default StorageClass: its PVCs would stay Pending. Checked on CREATE (volumeClaimTemplates are immutable).",
	StatefulSet: checkStorageClassNotFound,
}

func checkStorageClassNotFound(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], lk engine.Lookup) field.ErrorList {
	if in.Operation != admissionv1.Create {
		return nil // volumeClaimTemplates are immutable: judged once, on CREATE
	}
	var errs field.ErrorList
	for i := range in.Object.Spec.VolumeClaimTemplates {
		t := &in.Object.Spec.VolumeClaimTemplates[i]
		if _, ferr := resize.TemplateClass(ctx, lk, t, vctPath.Index(i).Child("spec", "storageClassName")); ferr != nil {
			errs = append(errs, ferr)
		}
	}
	return errs
}
