package rules

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/resize"
)

// VolumeClaimTemplateResize is the ID of rule volume-claim-template-resize.
const VolumeClaimTemplateResize = "volume-claim-template-resize"

var volumeClaimTemplateResize = engine.Rule{
	ID: VolumeClaimTemplateResize, Area: engine.AreaStorage, Action: engine.Deny,

	Description: "An UPDATE only grows storage requests of volumeClaimTemplates. The apiserver would refuse it, and existing PVCs never follow a template: the denial lists every PVC (`<template>-<statefulset>-<ordinal>`) with its size, StorageClass and whether it can expand, and the `stsguard expand` command that resizes them and re-creates the StatefulSet. Judged in the mutating webhook.",
	StatefulSet: checkTemplateResize,
}

func checkTemplateResize(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], lk engine.Lookup) field.ErrorList {
	var errs field.ErrorList
	for _, d := range pureGrowth(in) {
		path := requestPath(d.index)
		plan, err := resize.New(ctx, in.OldObject, d.name, d.to, lk)
		if err != nil {
			errs = append(errs, engine.LookupFailed(path, "PVCs", err))
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
