package engine

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// WithoutSecret returns the mutation as it is when Secret request sr cannot
// be written: without sr and without every change of the mutator that
// requested it, since they all rely on it (the env vars moved into the
// Secret, a generated password, kubectl's last-applied configuration
// rewritten to match). Changes of other mutators are kept. It also returns
// the Warn findings that tell the user what stayed as it was, where, why
// and how to do it by hand; reason says why the Secret could not be written
// and must hold no secret value. m is not modified; a request m does not
// hold leaves it unchanged.
func (m *Mutation) WithoutSecret(sr *SecretRequest, reason string) (*Mutation, Findings) {
	rule := ""
	out := &Mutation{warnings: m.warnings}
	for _, s := range m.secrets {
		if s == sr {
			rule = s.Rule
			continue
		}
		out.secrets = append(out.secrets, s)
	}
	if rule == "" || len(m.patch) != len(m.changes) {
		return m, nil
	}
	var dropped []Change
	for i, c := range m.changes {
		if c.Rule == rule {
			dropped = append(dropped, c)
			continue
		}
		out.changes = append(out.changes, c)
		out.patch = append(out.patch, m.patch[i])
	}
	var fs Findings
	for _, c := range dropped {
		if err := notMade(sr, c, reason); err != nil {
			fs = append(fs, Finding{Rule: rule, Action: Warn, Error: tagged(err, rule)})
		}
	}
	if len(fs) == 0 {
		// A mutator whose changes say nothing about env vars: one
		// finding where the Secret is first relied on.
		fs = Findings{{Rule: rule, Action: Warn, Error: tagged(&field.Error{Type: field.ErrorTypeInternal, Field: sr.Field.String(), Detail: fmt.Sprintf(
			"stsguard could not write Secret %q (%s), so it left the object as it was", sr.Name, reason)}, rule)}}
	}
	fs.sort()
	return out, fs
}

// notMade describes one change of password-secret-ref that was not made
// because its Secret could not be written, at the change's field path; nil
// for a change that only follows another (the last-applied annotation).
// The finding is of type field.ErrorTypeInternal: a failure of stsguard,
// not a problem of the object.
func notMade(sr *SecretRequest, c Change, reason string) *field.Error {
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
