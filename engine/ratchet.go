package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Ratcheting: on UPDATE, a Deny finding that the stored object has too is
// downgraded to Warn, so that an existing problem does not block an
// unrelated change. Whether the stored object has "the same" problem is
// decided by findingKey, which says what a finding is about rather than
// where it sits:
//
//   - the rule ID and the error type;
//   - the field path with every list index replaced by the identity of the
//     element it points at, read from the object the finding was made on:
//     its name (containers, env, volumes, imagePullSecrets, ports, ...),
//     its metadata.name (volumeClaimTemplates), its key (Secret volume
//     items), or else a digest of the whole element (envFrom, projected
//     sources). spec.template.spec.containers[1].env[3].value becomes
//     spec.template.spec.containers[name=db].env[name=MYSQL_ROOT_PASSWORD].value,
//     so inserting an env var or a container before an old problem leaves
//     it ratcheted;
//   - the referent: what the field points at in that object. For a scalar
//     (spec.serviceName, a storageClassName, an env value) a digest of the
//     value, for a reference (secretKeyRef, secretRef, a secret volume) the
//     Secret name and key, plus a digest of the error's BadValue (the
//     Service, StorageClass or template it names). Pointing serviceName at
//     another non-headless Service, a secretKeyRef at another weak key, or
//     writing another weak literal is therefore a new problem.
//
// Values are digested (SHA-256), so that a key never holds a literal
// password in clear; names and keys are kept as they are, since they are no
// secret and make keys readable in tests.

// ratchetView is an object as findingKey reads it: its unstructured form,
// converted once and only when a finding needs it.
type ratchetView struct {
	obj  any
	done bool
	u    map[string]any
}

func newRatchetView(obj any) *ratchetView { return &ratchetView{obj: obj} }

func (v *ratchetView) content() map[string]any {
	if !v.done {
		v.done = true
		v.u, _ = runtime.DefaultUnstructuredConverter.ToUnstructured(v.obj)
	}
	return v.u
}

// findingKey returns the identity of finding f made on the object v: equal
// keys mean the same problem about the same thing. See the comment above.
func findingKey(v *ratchetView, f Finding) string {
	var node any = v.content()
	var path strings.Builder
	for _, seg := range splitFieldPath(f.Error.Field) {
		if !seg.bracket {
			if path.Len() > 0 {
				path.WriteByte('.')
			}
			path.WriteString(seg.text)
			node = member(node, seg.text)
			continue
		}
		switch n := node.(type) {
		case []any:
			i, err := strconv.Atoi(seg.text)
			if err != nil || i < 0 || i >= len(n) {
				path.WriteString("[" + seg.text + "]")
				node = nil
				continue
			}
			path.WriteString("[" + elementIdentity(n[i]) + "]")
			node = n[i]
		default:
			path.WriteString("[" + seg.text + "]")
			node = member(node, seg.text)
		}
	}
	var bad string
	if _, omitted := f.Error.BadValue.(field.OmitValueType); !omitted && f.Error.BadValue != nil {
		bad = digest(f.Error.BadValue)
	}
	return strings.Join([]string{f.Rule, string(f.Error.Type), path.String(), referent(node), bad}, "\x00")
}

// pathSegment is one step of a rendered field.Path: a field name, or the
// text inside [] (a list index or a map key).
type pathSegment struct {
	text    string
	bracket bool
}

// splitFieldPath parses field.Path.String(): names separated by ".", list
// indexes and map keys in "[...]" (a key may hold dots, as in data[tls.crt]).
func splitFieldPath(p string) []pathSegment {
	var out []pathSegment
	for i := 0; i < len(p); {
		switch p[i] {
		case '.':
			i++
		case '[':
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				return append(out, pathSegment{text: p[i+1:], bracket: true})
			}
			out = append(out, pathSegment{text: p[i+1 : i+end], bracket: true})
			i += end + 1
		default:
			end := strings.IndexAny(p[i:], ".[")
			if end < 0 {
				end = len(p) - i
			}
			out = append(out, pathSegment{text: p[i : i+end]})
			i += end
		}
	}
	return out
}

func member(node any, name string) any {
	if m, ok := node.(map[string]any); ok {
		return m[name]
	}
	return nil
}

// elementIdentity names a list element by what it is: its name, its
// metadata.name, its key, or else a digest of the element.
func elementIdentity(e any) string {
	if m, ok := e.(map[string]any); ok {
		if s, ok := m["name"].(string); ok && s != "" {
			return "name=" + s
		}
		if s, ok := member(m["metadata"], "name").(string); ok && s != "" {
			return "name=" + s
		}
		if s, ok := m["key"].(string); ok && s != "" {
			return "key=" + s
		}
	}
	return "#" + digest(e)
}

// referent says what the node at a finding's path points at: for a
// reference (a map with name, key, secretName or claimName) those fields,
// for a scalar a digest of its value, and nothing for a missing node or
// another structure.
func referent(node any) string {
	switch n := node.(type) {
	case nil:
		return ""
	case map[string]any:
		var parts []string
		for _, k := range []string{"name", "key", "secretName", "claimName"} {
			if s, ok := n[k].(string); ok {
				parts = append(parts, k+"="+s)
			}
		}
		return strings.Join(parts, ",")
	case []any:
		return ""
	default:
		return digest(n)
	}
}

// digest returns a short SHA-256 digest of v's JSON form.
func digest(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}
