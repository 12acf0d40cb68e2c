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
)

// WeakPassword is the ID of rule weak-password.
const WeakPassword = "weak-password"

var weakPassword = engine.Rule{
	ID: WeakPassword, Area: engine.AreaCredentials, Action: engine.Deny,

	Description: "A password, or a secret key chosen like one (MINIO_SECRET_KEY, AWS_SECRET_ACCESS_KEY), is empty or a well-known default (password, changeme, root, admin, example, minioadmin, minio123, ...): a literal env value of a StatefulSet, a Secret key a StatefulSet uses as a password, or a Secret key named like a password. The value is never echoed.",
	StatefulSet: checkStatefulSetWeakPassword,
	Secret:      checkSecretWeakPassword,
}

// weakness describes why value is weak, for a message that never holds the
// value itself.
func weakness(value []byte) string {
	if strings.TrimSpace(string(value)) == "" {
		return "is empty"
	}
	return "is a well-known default password (on stsguard's weak-password list)"
}

func checkStatefulSetWeakPassword(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], lk engine.Lookup) field.ErrorList {
	cfg := &in.Config.Credentials
	sts := in.Object
	var errs field.ErrorList
	for _, pc := range podContainers(&sts.Spec.Template.Spec) {
		c := pc.C
		p := cfg.Profile(c.Image)
		for j, e := range c.Env {
			if e.ValueFrom != nil || !cfg.IsPasswordName(e.Name, p) || strings.Contains(e.Value, "$(") {
				continue
			}
			if cfg.IsWeakPassword([]byte(e.Value)) {
				errs = append(errs, field.Invalid(pc.Path.Child("env").Index(j).Child("value"), field.OmitValueType{}, fmt.Sprintf(
					"the password in %s %s; anyone who guesses it gets in: put a strong generated password into a Secret (kubectl create secret generic %s --from-literal=%s=\"$(openssl rand -base64 24)\") and reference it with valueFrom.secretKeyRef",
					e.Name, weakness([]byte(e.Value)), CredentialsSecretName(sts.Name), CredentialsKey(e.Name))))
			}
		}
	}
	secrets := &secretCache{lk: lk, namespace: sts.Namespace}
	for _, r := range secretRefs(&sts.Spec.Template.Spec) {
		if r.EnvName == "" || !cfg.IsPasswordName(r.EnvName, cfg.Profile(r.Image)) {
			continue
		}
		s, err := secrets.get(ctx, r.Secret)
		if err != nil {
			errs = append(errs, engine.LookupFailed(r.Path, "Secret "+sts.Namespace+"/"+r.Secret, err))
			continue
		}
		if s == nil {
			continue // secret-ref-missing reports it
		}
		if v, ok := s.Data[r.Key]; ok && cfg.IsWeakPassword(v) {
			errs = append(errs, field.Invalid(r.Path, field.OmitValueType{}, fmt.Sprintf(
				"%s reads Secret %q key %q, whose value %s; replace the value with a strong generated password (for example openssl rand -base64 24)",
				r.EnvName, r.Secret, r.Key, weakness(v))))
		}
	}
	return errs
}

func checkSecretWeakPassword(ctx context.Context, in *engine.Input[*corev1.Secret], lk engine.Lookup) field.ErrorList {
	cfg := &in.Config.Credentials
	if in.Operation == admissionv1.Delete {
		return nil
	}
	s := in.Object
	if len(s.Data) == 0 {
		return nil
	}
	users, ferr := secretUsers(ctx, lk, s.Namespace, s.Name, dataPath, func(r secretRef) bool {
		return r.EnvName != "" && cfg.IsPasswordName(r.EnvName, cfg.Profile(r.Image))
	})
	if ferr != nil {
		return field.ErrorList{ferr}
	}
	usedAs := map[string][]string{}
	for _, u := range users {
		for _, r := range u.refs {
			usedAs[r.Key] = append(usedAs[r.Key], fmt.Sprintf("%s of StatefulSet %q", r.EnvName, u.sts.Name))
		}
	}
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		if _, used := usedAs[k]; used || cfg.IsPasswordName(k, nil) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var errs field.ErrorList
	for _, k := range keys {
		v := s.Data[k]
		if !cfg.IsWeakPassword(v) {
			continue
		}
		why := "its name looks like a password"
		if u := usedAs[k]; len(u) > 0 {
			why = "it is the password " + strings.Join(u, ", ")
		}
		errs = append(errs, field.Invalid(dataPath.Key(k), field.OmitValueType{}, fmt.Sprintf(
			"the value %s and %s; anyone who guesses it gets in: store a strong generated password instead (kubectl create secret generic %s --from-literal=%s=\"$(openssl rand -base64 24)\" --dry-run=client -o yaml | kubectl apply -f -)",
			weakness(v), why, s.Name, k)))
	}
	return errs
}
