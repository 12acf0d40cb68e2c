package engine

import (
	"context"
	"sort"
	"strings"

	"github.com/go-openapi/jsonpointer"
	"github.com/stsguard/stsguard/credentials"
	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Change is one value a mutator set, described for people.
type Change struct {
	// Rule is the ID of the mutator.
	Rule string
	// Field is the path of the value that changed (spec.template.spec...).
	Field string
	// Message says what was changed and why; it never holds a secret value.
	Message string
	// Patch is the JSON patch operation (RFC 6902) that makes the change.
	Patch jsonpatch.JsonPatchOperation
}

// changedBy marks the warning of a Change.
const changedBy = ": changed by stsguard: "

// Warning is the admission warning that reports c to the user:
// "<field>: changed by stsguard: <message> [rule: <id>]".
func (c Change) Warning() string { return c.Field + changedBy + c.Message + " [rule: " + c.Rule + "]" }

// IsChangeWarning reports whether an admission warning is the Warning of a
// Change, that is, whether stsguard's mutating webhook changed the object.
func IsChangeWarning(w string) bool { return strings.Contains(w, changedBy) }

// Mutation collects what the mutators of one request change: JSON patch
// operations (RFC 6902) against the object as received, a description of each
// change, and the Secrets the changes rely on.
type Mutation struct {
	// patch[i] is changes[i].Patch: Set and Replace record both.
	patch   []jsonpatch.JsonPatchOperation
	changes []Change
	secrets []*credentials.SecretRequest
	// warnings are problems a mutator reports as Warn findings whatever
	// its FindingAction: a default it did not apply, and why.
	warnings field.ErrorList
}

// Pointer builds an RFC 6901 JSON pointer from reference tokens, escaping
// "~" and "/" in each: Pointer("metadata", "annotations", "a/b") is
// "/metadata/annotations/a~1b".
func Pointer(tokens ...string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(jsonpointer.Escape(t))
	}
	return b.String()
}

// Set records a JSON patch "add" of value at pointer (which also replaces an
// existing member), with the field path and message shown to people.
func (m *Mutation) Set(rule string, path *field.Path, pointer string, value any, message string) {
	op := jsonpatch.NewOperation("add", pointer, value)
	m.patch = append(m.patch, op)
	m.changes = append(m.changes, Change{Rule: rule, Field: path.String(), Message: message, Patch: op})
}

// Replace records a JSON patch "replace" of the existing value at pointer.
func (m *Mutation) Replace(rule string, path *field.Path, pointer string, value any, message string) {
	op := jsonpatch.NewOperation("replace", pointer, value)
	m.patch = append(m.patch, op)
	m.changes = append(m.changes, Change{Rule: rule, Field: path.String(), Message: message, Patch: op})
}

// Warn records a problem the mutator reports as a Warn finding (never a
// denial), such as a default it chose not to apply; the engine tags it
// with the mutator's rule ID.
func (m *Mutation) Warn(err *field.Error) { m.warnings = append(m.warnings, err) }

// NeedSecret records that the mutated object relies on r being written.
func (m *Mutation) NeedSecret(r *credentials.SecretRequest) { m.secrets = append(m.secrets, r) }

// Patch returns the JSON patch operations in the order they were made; apply
// them in that order. It is empty when nothing changed.
func (m *Mutation) Patch() []jsonpatch.JsonPatchOperation { return m.patch }

// Changes returns the changes sorted by field path.
func (m *Mutation) Changes() []Change {
	out := append([]Change(nil), m.changes...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

// Secrets returns the Secrets that must be written (created or given new
// keys) for the patched object to work, in the order they were requested.
func (m *Mutation) Secrets() []*credentials.SecretRequest { return m.secrets }

// Empty reports whether the mutation changes nothing.
func (m *Mutation) Empty() bool { return len(m.patch) == 0 && len(m.secrets) == 0 }

// Lookup returns base as it would be once the mutation's Secrets are
// written: Secret returns the planned Secret (the existing one with the new
// keys added). Validating a mutated object with it judges the object in the
// world the mutation would leave.
func (m *Mutation) Lookup(base Lookup) Lookup {
	if len(m.secrets) == 0 {
		return base
	}
	return plannedLookup{Lookup: base, secrets: m.secrets}
}

type plannedLookup struct {
	Lookup
	secrets []*credentials.SecretRequest
}

func (p plannedLookup) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	var out *corev1.Secret
	for _, r := range p.secrets {
		if r.Namespace != namespace || r.Name != name {
			continue
		}
		if out == nil {
			existing, err := p.Lookup.Secret(ctx, namespace, name)
			switch {
			case err == nil:
				out = existing.DeepCopy()
			case apierrors.IsNotFound(err):
				out = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
					Labels: map[string]string{credentials.ManagedByLabel: credentials.ManagedByValue}}}
			default:
				return nil, err
			}
			if out.Data == nil {
				out.Data = map[string][]byte{}
			}
		}
		for k, v := range r.Data() {
			out.Data[k] = v
		}
	}
	if out == nil {
		return p.Lookup.Secret(ctx, namespace, name)
	}
	return out, nil
}
