package rules

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/credentials"
	"github.com/stsguard/stsguard/engine"
)

// PasswordSecretRef is the ID of rule password-secret-ref.
const PasswordSecretRef = "password-secret-ref"

var passwordSecretRef = engine.Rule{
	ID: PasswordSecretRef, Area: engine.AreaCredentials, Action: engine.Mutate,
	FindingAction:     engine.Deny,
	Description:       "Moves a literal credential env value (a name ending in PASSWORD, SECRET, TOKEN, SECRET_KEY, ACCESS_KEY, PRIVATE_KEY, API_KEY, CREDENTIALS, ...) into the Secret <statefulset>-credentials and references it with valueFrom.secretKeyRef; on CREATE only, generates a password an image cannot start without (mysql, mariadb, postgres), and on an UPDATE warns instead. Never overwrites a Secret.",
	MutateStatefulSet: mutateCredentials,
	SecretNotWritten:  notMade,
}

// CredentialsSecretName returns the name of the Secret that holds the moved
// credentials of StatefulSet sts: "<sts>-credentials".
func CredentialsSecretName(sts string) string { return sts + "-credentials" }

// CredentialsKey derives a Secret key from an env var name:
// MYSQL_ROOT_PASSWORD gives "mysql-root-password". Characters a Secret key
// cannot hold ([-._a-zA-Z0-9] only) become "-".
func CredentialsKey(envName string) string {
	b := []byte(strings.ToLower(envName))
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.':
		default:
			b[i] = '-'
		}
	}
	return string(b)
}

// credentialEnv is one env var the mutator points at the Secret.
type credentialEnv struct {
	path    *field.Path
	pointer string
	envName string
	key     string
	// slot is the env var to replace with the reference; when nil, the
	// reference is appended to container's env.
	slot      *corev1.EnvVar
	container *corev1.Container
}

func mutateCredentials(ctx context.Context, in *engine.Input[*appsv1.StatefulSet], lk engine.Lookup, m *engine.Mutation) field.ErrorList {
	cfg := &in.Config.Credentials
	sts := in.Object
	secretName := CredentialsSecretName(sts.Name)
	// Whatever else happens, kubectl's last-applied configuration says what
	// the object says for every env var that reads stsguard's Secret: this
	// also takes out a literal that an older stsguard moved out of the pod
	// template but left in the annotation (an annotation-only change, which
	// rolls no pod).
	scrub := func() field.ErrorList {
		if err := rewriteLastApplied(sts, referencing(sts, secretName), m); err != nil {
			return field.ErrorList{err}
		}
		return nil
	}
	if in.Operation == admissionv1.Update && !templateChanged(in) {
		return scrub()
	}
	literal := map[string][]byte{}
	generated := map[string][]byte{}
	var envs []credentialEnv

	assignKey := func(key, container string, value []byte) string {
		if have, ok := literal[key]; ok && !bytes.Equal(have, value) {
			key = CredentialsKey(container) + "-" + key
		}
		literal[key] = value
		return key
	}

	for _, pc := range podContainers(&sts.Spec.Template.Spec) {
		c, cPath := pc.C, pc.Path
		for j := range c.Env {
			e := &c.Env[j]
			if e.ValueFrom != nil && !reapplied(e, secretName) || e.Value == "" || !cfg.IsCredentialEnv(e.Name) || strings.Contains(e.Value, "$(") {
				continue
			}
			if cfg.IsPasswordName(e.Name, cfg.Profile(c.Image)) && cfg.IsWeakPassword([]byte(e.Value)) {
				// A well-known default protects nothing in a Secret:
				// leave it where the user wrote it, for weak-password to
				// report there.
				continue
			}
			key := assignKey(CredentialsKey(e.Name), c.Name, []byte(e.Value))
			envs = append(envs, credentialEnv{
				path:    cPath.Child("env").Index(j),
				pointer: engine.Pointer("spec", "template", "spec", pc.List, fmt.Sprint(pc.Index), "env", fmt.Sprint(j)),
				envName: e.Name, key: key, slot: e,
			})
		}
		if pc.List != "containers" {
			continue
		}
		p := cfg.Profile(c.Image)
		if p == nil || !passwordMissing(p, c) {
			continue
		}
		if in.Operation != admissionv1.Create || engine.IsRecreate(in) {
			// A re-created StatefulSet's pods hold data already: as on an
			// UPDATE, a password generated now would not be theirs.
			m.Warn(passwordNotGenerated(ctx, p, sts, cPath.Child("env"), lk))
			continue
		}
		key := CredentialsKey(p.PasswordEnv[0])
		if _, taken := literal[key]; taken {
			key = CredentialsKey(c.Name) + "-" + key
		}
		if _, ok := generated[key]; !ok {
			pw, err := generatePassword(in.Config.Rand)
			if err != nil {
				return field.ErrorList{field.InternalError(cPath.Child("env"), err)}
			}
			generated[key] = pw
		}
		envs = append(envs, credentialEnv{
			path:    cPath.Child("env"),
			pointer: engine.Pointer("spec", "template", "spec", pc.List, fmt.Sprint(pc.Index), "env"),
			envName: p.PasswordEnv[0], key: key, container: c,
		})
	}
	if len(envs) == 0 {
		return scrub()
	}
	if errs := validation.IsDNS1123Subdomain(secretName); len(errs) > 0 {
		return field.ErrorList{field.Forbidden(envs[0].path, fmt.Sprintf(
			"cannot move the credential into Secret %q: %s; shorten metadata.name or reference a Secret yourself with valueFrom.secretKeyRef",
			secretName, strings.Join(errs, "; ")))}
	}

	req := credentials.NewSecretRequest(sts.Namespace, secretName, sts.Name, envs[0].path, literal, generated)
	existing, err := lk.Secret(ctx, sts.Namespace, secretName)
	switch {
	case apierrors.IsNotFound(err):
		existing = nil
	case err != nil:
		return field.ErrorList{engine.LookupFailed(envs[0].path, "Secret "+sts.Namespace+"/"+secretName, err)}
	}
	plan, ferr := req.Plan(existing, envs[0].path)
	if ferr != nil {
		return field.ErrorList{ferr}
	}
	if plan != nil {
		m.NeedSecret(plan)
	}

	// Record the patch and apply it to the copy, in collection order: a
	// container's replacements come before its append, so the slots captured
	// above are still the live ones. Appends go through "-" so that they
	// compose.
	for _, ce := range envs {
		ref := corev1.EnvVar{Name: ce.envName, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secretName}, Key: ce.key}}}
		if ce.slot != nil {
			*ce.slot = ref
			m.Replace(PasswordSecretRef, ce.path, ce.pointer, ref, fmt.Sprintf(
				"moved the literal value of %s into Secret %q key %q and referenced it with valueFrom.secretKeyRef", ce.envName, secretName, ce.key))
			continue
		}
		msg := fmt.Sprintf("%s was not set and the image cannot start without it; generated a %d-character password into Secret %q key %q and referenced it",
			ce.envName, credentials.GeneratedPasswordLength, secretName, ce.key)
		if len(ce.container.Env) == 0 {
			// JSON patch cannot append to a list that does not exist.
			ce.container.Env = []corev1.EnvVar{ref}
			m.Set(PasswordSecretRef, ce.path.Key(ce.envName), ce.pointer, ce.container.Env, msg)
			continue
		}
		ce.container.Env = append(ce.container.Env, ref)
		m.Set(PasswordSecretRef, ce.path.Key(ce.envName), ce.pointer+"/-", ref, msg)
	}
	return scrub()
}

// referencing returns the env vars of sts's pod template that read Secret
// secretName, by container list, container and name, with their valueFrom.
func referencing(sts *appsv1.StatefulSet, secretName string) map[movedEnv]*corev1.EnvVarSource {
	out := map[movedEnv]*corev1.EnvVarSource{}
	for _, pc := range podContainers(&sts.Spec.Template.Spec) {
		for _, e := range pc.C.Env {
			if e.Value == "" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == secretName {
				out[movedEnv{list: pc.List, container: pc.C.Name, env: e.Name}] = e.ValueFrom
			}
		}
	}
	return out
}

// reapplied reports whether e holds both a literal value and the
// secretKeyRef to secretName that stsguard put in its place: what the next
// `kubectl apply --server-side` (or a kubectl diff, which is one) of the same
// manifest sends, since it sets value again and leaves the valueFrom that
// admission set. The apiserver refuses an env var with both; moving the
// literal again gives back the stored reference.
func reapplied(e *corev1.EnvVar, secretName string) bool {
	return e.Value != "" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == secretName
}

// passwordNotGenerated is the warning for a container that lacks the
// password its image needs, on an UPDATE. stsguard generates a password on
// CREATE only: the images read *_PASSWORD when they initialise an empty data
// directory and never again, so on a StatefulSet that already holds data a
// new password would not be the one the database uses, and the Secret would
// lie. When stsguard's Secret already holds the key (generated when the
// StatefulSet was created, and the reference since dropped, for example by
// kubectl replace -f of the original manifest), the warning says how to
// reference it again. It names keys, never values.
func passwordNotGenerated(ctx context.Context, p *credentials.ImageProfile, sts *appsv1.StatefulSet, path *field.Path, lk engine.Lookup) *field.Error {
	env := p.PasswordEnv[0]
	secretName, key := CredentialsSecretName(sts.Name), CredentialsKey(env)
	fix := fmt.Sprintf("set %s with valueFrom.secretKeyRef to a Secret that holds the password the database was initialised with (or mount it and set %s_FILE)", env, env)
	if s, err := lk.Secret(ctx, sts.Namespace, secretName); err == nil && s.Labels[credentials.ManagedByLabel] == credentials.ManagedByValue {
		if _, ok := s.Data[key]; ok {
			fix = fmt.Sprintf("Secret %q already holds key %q, which stsguard generated for this StatefulSet: if the database was initialised with it, set %s with valueFrom.secretKeyRef name %s key %s; otherwise %s",
				secretName, key, env, secretName, key, fix)
		}
	}
	var opt []string
	for _, c := range p.PasswordOptionalWhen {
		if c.Value != "" {
			opt = append(opt, c.Name+"="+c.Value)
		} else {
			opt = append(opt, c.Name)
		}
	}
	if len(opt) > 0 {
		fix += fmt.Sprintf(", or set %s if the image should start without it", strings.Join(opt, " or "))
	}
	return field.Required(path, fmt.Sprintf(
		"%s is not set and a %s container cannot initialise an empty data directory without it (a new replica, a lost volume), but stsguard generates a password only when a StatefulSet is created: a database that already holds data never reads %s again, so a generated password would not be the one it uses; %s",
		env, p.Name, env, fix))
}

// passwordMissing reports whether container c, whose image has profile p,
// lacks the password its image cannot start without. A container with
// envFrom may get it from there, so it is not reported.
func passwordMissing(p *credentials.ImageProfile, c *corev1.Container) bool {
	if !p.PasswordRequired || len(p.PasswordEnv) == 0 || len(c.EnvFrom) > 0 {
		return false
	}
	for _, e := range c.Env {
		if e.Name == p.PasswordEnv[0] || e.Name == p.PasswordEnv[0]+"_FILE" {
			return false
		}
		for _, cond := range p.PasswordOptionalWhen {
			if e.Name != cond.Name {
				continue
			}
			if e.ValueFrom != nil || (cond.Value == "" && e.Value != "") || (cond.Value != "" && e.Value == cond.Value) {
				return false
			}
		}
	}
	return true
}

const passwordAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// generatePassword returns GeneratedPasswordLength characters drawn
// uniformly from passwordAlphabet, reading random bytes from r.
func generatePassword(r io.Reader) ([]byte, error) {
	out := make([]byte, 0, credentials.GeneratedPasswordLength)
	buf := make([]byte, 64)
	// 62 symbols: reject bytes >= 248 (4*62) to avoid modulo bias.
	for len(out) < credentials.GeneratedPasswordLength {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("generating a password: %w", err)
		}
		for _, b := range buf {
			if b < 248 && len(out) < credentials.GeneratedPasswordLength {
				out = append(out, passwordAlphabet[int(b)%len(passwordAlphabet)])
			}
		}
	}
	return out, nil
}

// notMade is password-secret-ref's SecretNotWritten: it describes one
// change that was not made
// because its Secret could not be written, at the change's field path; nil
// for a change that only follows another (the last-applied annotation).
// The finding is of type field.ErrorTypeInternal: a failure of stsguard,
// not a problem of the object.
func notMade(sr *credentials.SecretRequest, c engine.Change, reason string) *field.Error {
	ref := envRefTo(c.Patch.Value, sr.Name)
	if ref == nil {
		return nil
	}
	key := ref.ValueFrom.SecretKeyRef.Key
	var detail string
	switch c.Patch.Operation {
	case "replace":
		detail = fmt.Sprintf(
			"stsguard could not write Secret %q (%s), so the value of %s stays a literal in the StatefulSet, where anyone who can read the StatefulSet reads it; stsguard fails open, so the request was admitted without the move: move the value yourself (kubectl create secret generic %s --from-literal=%s=...) and set %s with valueFrom.secretKeyRef name %s key %s",
			sr.Name, reason, ref.Name, sr.Name, key, ref.Name, sr.Name, key)
	default:
		detail = fmt.Sprintf(
			"stsguard could not write Secret %q (%s), so no password was generated for %s, which the image needs to initialise an empty data directory: the pods cannot initialise the database until it is set; stsguard fails open, so the request was admitted without it: create the Secret yourself (kubectl create secret generic %s --from-literal=%s=\"$(openssl rand -base64 24)\") and set %s with valueFrom.secretKeyRef name %s key %s",
			sr.Name, reason, ref.Name, sr.Name, key, ref.Name, sr.Name, key)
	}
	return &field.Error{Type: field.ErrorTypeInternal, Field: c.Field, Detail: detail}
}

// envRefTo returns the env var in a patch value (one EnvVar, or a whole env
// list) that reads Secret name, or nil.
func envRefTo(v any, name string) *corev1.EnvVar {
	var list []corev1.EnvVar
	switch x := v.(type) {
	case corev1.EnvVar:
		list = []corev1.EnvVar{x}
	case []corev1.EnvVar:
		list = x
	}
	for i := range list {
		if r := list[i].ValueFrom; r != nil && r.SecretKeyRef != nil && r.SecretKeyRef.Name == name {
			return &list[i]
		}
	}
	return nil
}
