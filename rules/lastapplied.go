package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/engine"
)

// LastAppliedAnnotation is where `kubectl apply` (client-side, its default)
// and `kubectl create|replace --save-config` keep the whole manifest they
// sent, as JSON, for their next three-way merge.
const LastAppliedAnnotation = corev1.LastAppliedConfigAnnotation

var lastAppliedPath = field.NewPath("metadata", "annotations").Key(LastAppliedAnnotation)

// movedEnv names one env var whose literal value a mutator moved into a
// Secret: the container list ("initContainers" or "containers"), the
// container's name and the env var's name, the keys kubectl's strategic
// merge uses for these lists.
type movedEnv struct{ list, container, env string }

// rewriteLastApplied makes kubectl's copy of the manifest say what the
// stored object says for each env var in moved: the entry of the same name,
// in the container of the same name, loses its literal value and gets the
// same valueFrom. Without it the password stsguard moved would still be
// stored, in plain text, in the annotation, readable by anyone who can get
// the StatefulSet. The annotation is rewritten, never dropped: kubectl needs
// it for its next apply, and with the rewrite that apply converges (it sends
// the literal again, which is moved again into the same Secret key, and the
// pod template does not change).
//
// It changes sts (the mutated copy) and records the patch in m. A StatefulSet
// without the annotation is left alone. An annotation that is not a JSON
// object is returned as a Forbidden error: stsguard cannot tell whether it
// holds the literal, and neither can kubectl use it.
func rewriteLastApplied(sts *appsv1.StatefulSet, moved map[movedEnv]*corev1.EnvVarSource, m *engine.Mutation) *field.Error {
	raw, ok := sts.Annotations[LastAppliedAnnotation]
	if !ok || len(moved) == 0 {
		return nil
	}
	var manifest map[string]any
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber() // numbers written back exactly (a float64 would round large ones)
	if err := dec.Decode(&manifest); err != nil {
		return field.Forbidden(lastAppliedPath, fmt.Sprintf(
			"is not valid JSON (%v), so stsguard cannot remove the password it moved from it; remove the annotation (kubectl apply will write it again) or fix it", err))
	}
	spec, _, _ := unstructured.NestedFieldNoCopy(manifest, "spec", "template", "spec")
	podSpec, _ := spec.(map[string]any)
	changed := false
	for _, list := range []string{"initContainers", "containers"} {
		containers, _ := podSpec[list].([]any)
		for _, c := range containers {
			container, _ := c.(map[string]any)
			cname, _ := container["name"].(string)
			env, _ := container["env"].([]any)
			for _, e := range env {
				entry, _ := e.(map[string]any)
				name, _ := entry["name"].(string)
				src, ok := moved[movedEnv{list: list, container: cname, env: name}]
				if !ok {
					continue
				}
				if _, literal := entry["value"]; !literal {
					continue
				}
				from, err := runtime.DefaultUnstructuredConverter.ToUnstructured(src)
				if err != nil {
					return field.InternalError(lastAppliedPath, err)
				}
				delete(entry, "value")
				entry["valueFrom"] = from
				changed = true
			}
		}
	}
	if !changed {
		return nil
	}
	out, err := json.Marshal(manifest)
	if err != nil {
		return field.InternalError(lastAppliedPath, err)
	}
	if bytes.HasSuffix([]byte(raw), []byte("\n")) { // as kubectl writes it
		out = append(out, '\n')
	}
	sts.Annotations[LastAppliedAnnotation] = string(out)
	m.Replace(PasswordSecretRef, lastAppliedPath, engine.Pointer("metadata", "annotations", LastAppliedAnnotation), string(out),
		"the same env entries now use the same valueFrom.secretKeyRef in kubectl's last-applied configuration, so that no copy of the moved value stays in the object")
	return nil
}
