package rules

import (
	"context"
	"fmt"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// SecretKeyRemoved is the ID of rule secret-key-removed.
const SecretKeyRemoved = "secret-key-removed"

var secretKeyRemoved = engine.Rule{
	ID: SecretKeyRemoved, Area: engine.AreaCredentials, Action: engine.Deny,

	Description: "A Secret UPDATE removes a key that a StatefulSet references through a non-optional secretKeyRef or secret volume item: its next pod would not start.",
	Secret:      checkSecretKeyRemoved,
}

func checkSecretKeyRemoved(ctx context.Context, in *engine.Input[*corev1.Secret], lk engine.Lookup) field.ErrorList {
	if in.Operation != admissionv1.Update {
		return nil
	}
	removed := map[string]bool{}
	for k := range in.OldObject.Data {
		if _, ok := in.Object.Data[k]; !ok {
			removed[k] = true
		}
	}
	if len(removed) == 0 {
		return nil
	}
	s := in.Object
	users, ferr := secretUsers(ctx, lk, s.Namespace, s.Name, dataPath, func(r secretRef) bool {
		return !r.Optional && r.Key != "" && removed[r.Key]
	})
	if ferr != nil {
		return field.ErrorList{ferr}
	}
	byKey := map[string][]string{}
	for _, u := range users {
		for _, r := range u.refs {
			byKey[r.Key] = append(byKey[r.Key], fmt.Sprintf("StatefulSet %q (%s)", u.sts.Name, r.Path))
		}
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs field.ErrorList
	for _, k := range keys {
		errs = append(errs, field.Forbidden(dataPath.Key(k), fmt.Sprintf(
			"key %q is used by %s; a pod that starts without it (a restart, a reschedule, a scale-up) fails: keep the key, or change the StatefulSet first to stop using it or to mark the reference optional: true",
			k, strings.Join(byKey[k], ", "))))
	}
	return errs
}
