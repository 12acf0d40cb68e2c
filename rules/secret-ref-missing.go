package rules

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// SecretRefMissing is the ID of rule secret-ref-missing.
const SecretRefMissing = "secret-ref-missing"

var secretRefMissing = engine.Rule{
	ID: SecretRefMissing, Area: engine.AreaCredentials, Action: engine.Warn,

	Description: "A non-optional reference of the pod template (env valueFrom.secretKeyRef, envFrom, secret or projected volume, imagePullSecrets) names a Secret or key that does not exist: the pods would not start.",
	StatefulSet: checkSecretRefMissing,
}

func checkSecretRefMissing(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], lk engine.Lookup) field.ErrorList {
	sts := in.Object
	secrets := &secretCache{lk: lk, namespace: sts.Namespace}
	var errs field.ErrorList
	for _, r := range secretRefs(&sts.Spec.Template.Spec) {
		if r.Optional || r.Secret == "" {
			continue
		}
		s, err := secrets.get(ctx, r.Secret)
		if err != nil {
			errs = append(errs, engine.LookupFailed(r.Path, "Secret "+sts.Namespace+"/"+r.Secret, err))
			continue
		}
		if s == nil {
			if plannedCredentials(in, r) {
				continue
			}
			errs = append(errs, field.NotFound(r.Path, r.Secret))
			errs[len(errs)-1].Detail = fmt.Sprintf("no Secret %q in namespace %q; %s until it exists: create it before the StatefulSet, fix the name, or mark the reference optional: true",
				r.Secret, sts.Namespace, refConsequence(r))
			continue
		}
		if r.Key == "" {
			continue
		}
		if _, ok := s.Data[r.Key]; ok {
			continue
		}
		e := field.NotFound(r.Path, r.Key)
		e.Detail = fmt.Sprintf("Secret %q has no key %q (it has %s); %s until it does: add the key, fix the reference, or mark it optional: true",
			r.Secret, r.Key, describeKeys(s.Data), refConsequence(r))
		errs = append(errs, e)
	}
	return errs
}

// plannedCredentials reports whether r is the reference that
// password-secret-ref makes to <sts>-credentials in a dryRun request, where
// the Secret is not written: a real request would have created it.
func plannedCredentials(in *engine.Input[*appsv1.StatefulSet], r secretRef) bool {
	if !in.DryRun || r.Secret != CredentialsSecretName(in.Object.Name) {
		return false
	}
	if in.OldObject == nil {
		return true
	}
	for _, old := range secretRefs(&in.OldObject.Spec.Template.Spec) {
		if old.Secret == r.Secret && old.Key == r.Key {
			return false // referenced before this request: really missing
		}
	}
	return true
}

// refConsequence says what happens to a pod whose reference r cannot be
// resolved.
func refConsequence(r secretRef) string {
	switch {
	case strings.Contains(r.Path.String(), "imagePullSecrets"):
		return "image pulls from a private registry fail"
	case strings.Contains(r.Path.String(), "volumes"):
		return "the pods stay in ContainerCreating"
	default:
		return "the pods fail with CreateContainerConfigError"
	}
}
