package rules

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// VolumeClaimTemplateShrink is the ID of rule volume-claim-template-shrink.
const VolumeClaimTemplateShrink = "volume-claim-template-shrink"

var volumeClaimTemplateShrink = engine.Rule{
	ID: VolumeClaimTemplateShrink, Area: engine.AreaStorage, Action: engine.Deny,

	Description: "An UPDATE lowers the storage request of a volumeClaimTemplate: a PVC can never shrink. Judged in the mutating webhook, which sees the request before the apiserver's own validation rejects it.",
	StatefulSet: checkTemplateShrink,
}

func checkTemplateShrink(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], _ engine.Lookup) field.ErrorList {
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
