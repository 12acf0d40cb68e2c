package rules

import (
	"context"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// SecretInUseDelete is the ID of rule secret-in-use-delete.
const SecretInUseDelete = "secret-in-use-delete"

var secretInUseDelete = engine.Rule{
	ID: SecretInUseDelete, Area: engine.AreaCredentials, Action: engine.Warn,

	Description: "DELETE of a Secret that a StatefulSet references non-optionally: its next pod would not start.",
	Secret:      checkSecretInUseDelete,
}

func checkSecretInUseDelete(ctx context.Context, in *engine.Input[*corev1.Secret], lk engine.Lookup) field.ErrorList {
	if in.Operation != admissionv1.Delete {
		return nil
	}
	s := in.OldObject
	users, ferr := secretUsers(ctx, lk, s.Namespace, s.Name, metadataNamePath, func(r secretRef) bool { return !r.Optional })
	if ferr != nil {
		return field.ErrorList{ferr}
	}
	if len(users) == 0 {
		return nil
	}
	names := make([]string, len(users))
	for i, u := range users {
		names[i] = u.describe()
	}
	return field.ErrorList{field.Forbidden(metadataNamePath, fmt.Sprintf(
		"Secret %q is used by %s; pods that start after the delete (a restart, a reschedule, a scale-up) will not start: re-create the Secret, or delete or change the StatefulSet first",
		s.Name, strings.Join(names, ", ")))}
}
