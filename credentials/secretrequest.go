package credentials

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Labels and annotations stsguard puts on the Secrets it creates.
const (
	ManagedByLabel        = "app.kubernetes.io/managed-by"
	ManagedByValue        = "stsguard"
	StatefulSetAnnotation = "stsguard.io/statefulset"
)

// NewSecretRequest returns the request for Secret namespace/name, which
// StatefulSet statefulSet relies on from field path on: literal holds the
// values that must be stored exactly (moved from the object), generated the
// values any existing value may stand in for (generated passwords). Plan it
// against the Secret as it exists before executing it.
func NewSecretRequest(namespace, name, statefulSet string, path *field.Path, literal, generated map[string][]byte) *SecretRequest {
	return &SecretRequest{Namespace: namespace, Name: name, StatefulSet: statefulSet, Field: path, literal: literal, generated: generated}
}

// SecretRequest is a Secret that a mutated object relies on: either a new
// Secret or new keys for an existing Secret that stsguard manages. Values are
// unexported so that no logger or encoder can print them.
type SecretRequest struct {
	// Namespace and Name identify the Secret.
	Namespace, Name string
	// StatefulSet is the name of the StatefulSet that references it.
	StatefulSet string
	// Rule is the ID of the mutator that requested it (set by the engine);
	// a finding about the write is this rule's.
	Rule string
	// Create is true when the Secret does not exist yet.
	Create bool
	// ResourceVersion is the version of the existing Secret the keys are
	// added to, for optimistic concurrency; empty when Create is true.
	ResourceVersion string
	// Field is the path of the first env var that relies on the Secret, for
	// errors about it.
	Field *field.Path

	literal   map[string][]byte // key -> value that must be stored exactly
	generated map[string][]byte // key -> generated value; any existing value will do
}

// Keys returns the keys the request writes, sorted.
func (r *SecretRequest) Keys() []string {
	keys := make([]string, 0, len(r.literal)+len(r.generated))
	for k := range r.literal {
		keys = append(keys, k)
	}
	for k := range r.generated {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Data returns the key/value pairs to write. Callers must never log them.
func (r *SecretRequest) Data() map[string][]byte {
	out := make(map[string][]byte, len(r.literal)+len(r.generated))
	for k, v := range r.literal {
		out[k] = v
	}
	for k, v := range r.generated {
		out[k] = v
	}
	return out
}

// String describes the request without its values.
func (r *SecretRequest) String() string {
	verb := "add keys to"
	if r.Create {
		verb = "create"
	}
	return fmt.Sprintf("%s Secret %s/%s (keys %s)", verb, r.Namespace, r.Name, strings.Join(r.Keys(), ", "))
}

// Plan decides what to do about the Secret the request describes, given the
// Secret as it exists now (nil when it does not exist). It returns the
// request to execute (nil when the Secret already holds everything) and a
// Forbidden error when the Secret holds a different value under a literal's
// key or lacks keys and is not managed by stsguard: stsguard never
// overwrites a Secret. Errors name keys, never values; their field path is
// path.
func (r *SecretRequest) Plan(existing *corev1.Secret, path *field.Path) (*SecretRequest, *field.Error) {
	if existing == nil {
		out := *r
		out.Create, out.ResourceVersion = true, ""
		return &out, nil
	}
	missingLiteral := map[string][]byte{}
	missingGenerated := map[string][]byte{}
	for k, v := range r.literal {
		have, ok := existing.Data[k]
		switch {
		case !ok:
			missingLiteral[k] = v
		case !bytes.Equal(have, v):
			return nil, field.Forbidden(path, fmt.Sprintf(
				"Secret %q already holds a different value under key %q and stsguard never overwrites a Secret; put the new value in the Secret yourself (kubectl create secret generic %s --from-literal=%s=... --dry-run=client -o yaml | kubectl apply -f -) and reference it with valueFrom.secretKeyRef",
				r.Name, k, r.Name, k))
		}
	}
	for k, v := range r.generated {
		if _, ok := existing.Data[k]; !ok {
			missingGenerated[k] = v
		}
	}
	if len(missingLiteral)+len(missingGenerated) == 0 {
		return nil, nil
	}
	out := &SecretRequest{Namespace: r.Namespace, Name: r.Name, StatefulSet: r.StatefulSet, Rule: r.Rule, Field: r.Field,
		ResourceVersion: existing.ResourceVersion, literal: missingLiteral, generated: missingGenerated}
	if existing.Labels[ManagedByLabel] != ManagedByValue {
		return nil, field.Forbidden(path, fmt.Sprintf(
			"Secret %q exists but was not created by stsguard and lacks keys %s, and stsguard never modifies a Secret it does not manage; add the keys to the Secret yourself, or reference another Secret with valueFrom.secretKeyRef",
			r.Name, strings.Join(out.Keys(), ", ")))
	}
	return out, nil
}
