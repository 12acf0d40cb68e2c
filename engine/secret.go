package engine

import (
	"fmt"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var dataPath = field.NewPath("data")

// secretRules keep the references between StatefulSets and their Secrets
// intact from the Secret's side.
func secretRules(cfg *Config) []Rule[*corev1.Secret] {
	return []Rule[*corev1.Secret]{
		{ID: SecretKeyRemoved, Check: checkSecretKeyRemoved},
		{ID: SecretInUseDelete, Check: checkSecretInUseDelete},
		{ID: WeakPassword, Check: func(in *Input[*corev1.Secret], lk Lookup) field.ErrorList {
			return checkSecretWeakPassword(cfg, in, lk)
		}},
	}
}

// secretCache remembers the Secrets one check has read.
type secretCache struct {
	lk        Lookup
	namespace string
	seen      map[string]*corev1.Secret // nil value: not found
}

func (c *secretCache) get(name string) (*corev1.Secret, error) {
	if s, ok := c.seen[name]; ok {
		return s, nil
	}
	s, err := c.lk.Secret(c.namespace, name)
	switch {
	case apierrors.IsNotFound(err):
		s = nil
	case err != nil:
		return nil, err
	}
	if c.seen == nil {
		c.seen = map[string]*corev1.Secret{}
	}
	c.seen[name] = s
	return s, nil
}

func checkSecretRefMissing(in *Input[*appsv1.StatefulSet], lk Lookup) field.ErrorList {
	sts := in.Object
	secrets := &secretCache{lk: lk, namespace: sts.Namespace}
	var errs field.ErrorList
	for _, r := range secretRefs(&sts.Spec.Template.Spec) {
		if r.Optional || r.Secret == "" {
			continue
		}
		s, err := secrets.get(r.Secret)
		if err != nil {
			errs = append(errs, lookupFailed(r.Path, "Secret "+sts.Namespace+"/"+r.Secret, err))
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
func plannedCredentials(in *Input[*appsv1.StatefulSet], r secretRef) bool {
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

// describeKeys lists a Secret's keys (never values) for a message.
func describeKeys(data map[string][]byte) string {
	if len(data) == 0 {
		return "no keys"
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, fmt.Sprintf("%q", k))
	}
	sort.Strings(keys)
	return "keys " + strings.Join(keys, ", ")
}

func checkSecretKeyRemoved(in *Input[*corev1.Secret], lk Lookup) field.ErrorList {
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
	users, ferr := secretUsers(lk, s.Namespace, s.Name, dataPath, func(r secretRef) bool {
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

func checkSecretInUseDelete(in *Input[*corev1.Secret], lk Lookup) field.ErrorList {
	if in.Operation != admissionv1.Delete {
		return nil
	}
	s := in.OldObject
	users, ferr := secretUsers(lk, s.Namespace, s.Name, metadataNamePath, func(r secretRef) bool { return !r.Optional })
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
