package rules

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// PVCRetentionDelete is the ID of rule pvc-retention-delete.
const PVCRetentionDelete = "pvc-retention-delete"

var pvcRetentionDelete = engine.Rule{
	ID: PVCRetentionDelete, Area: engine.AreaStorage, Action: engine.Warn,

	Description: "persistentVolumeClaimRetentionPolicy whenDeleted or whenScaled is Delete on a database image: deleting or scaling down the StatefulSet deletes its data.",
	StatefulSet: checkPVCRetention,
}

func checkPVCRetention(_ context.Context, in *engine.Input[*appsv1.StatefulSet], _ engine.Lookup) field.ErrorList {
	cfg := &in.Config.Credentials
	sts := in.Object
	policy := sts.Spec.PersistentVolumeClaimRetentionPolicy
	if policy == nil || len(sts.Spec.VolumeClaimTemplates) == 0 {
		return nil
	}
	if !createOrTemplateChanged(in) && equality.Semantic.DeepEqual(policy, in.OldObject.Spec.PersistentVolumeClaimRetentionPolicy) {
		return nil
	}
	var profile string
	for _, c := range sts.Spec.Template.Spec.Containers {
		if p := cfg.Profile(c.Image); p != nil {
			profile = p.Name
			break
		}
	}
	if profile == "" {
		return nil
	}
	base := field.NewPath("spec", "persistentVolumeClaimRetentionPolicy")
	var errs field.ErrorList
	if policy.WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		errs = append(errs, field.Invalid(base.Child("whenDeleted"), string(policy.WhenDeleted), fmt.Sprintf(
			"on a %s StatefulSet: deleting the StatefulSet (kubectl delete, helm uninstall) deletes its PVCs and the data on them; use Retain (the default) and delete PVCs by hand when you mean to",
			profile)))
	}
	if policy.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		errs = append(errs, field.Invalid(base.Child("whenScaled"), string(policy.WhenScaled), fmt.Sprintf(
			"on a %s StatefulSet: scaling down deletes the PVCs of the removed ordinals, and scaling back up starts those members with no data; use Retain (the default)",
			profile)))
	}
	return errs
}
