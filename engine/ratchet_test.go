package engine

import (
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestFindingKey: the identity of a finding names list elements by what
// they are, and never holds a value from the object in clear.
func TestFindingKey(t *testing.T) {
	sts := &appsv1.StatefulSet{}
	sts.Spec.Template.Spec.Containers = []corev1.Container{{Name: "db", Image: "mysql",
		Env: []corev1.EnvVar{{Name: "TZ", Value: "UTC"}, {Name: "MYSQL_ROOT_PASSWORD", Value: "s3cr3t-Value"}}}}
	f := Finding{Rule: "weak-password", Error: field.Invalid(field.NewPath("spec", "template", "spec").Child("containers").Index(0).Child("env").Index(1).Child("value"), field.OmitValueType{}, "")}
	key := findingKey(newRatchetView(sts), f)
	assert.Contains(t, key, "containers[name=db].env[name=MYSQL_ROOT_PASSWORD].value")
	assert.NotContains(t, key, "s3cr3t-Value")
	assert.NotContains(t, key, "[0]")
	assert.NotContains(t, key, "[1]")

	// A path the object does not have (a missing probe) keeps its tail.
	f = Finding{Rule: "readiness-probe-missing", Error: field.Required(field.NewPath("spec", "template", "spec").Child("containers").Index(0).Child("readinessProbe"), "")}
	assert.Contains(t, findingKey(newRatchetView(sts), f), "containers[name=db].readinessProbe")
	// An index out of range is kept as it is.
	f = Finding{Rule: "readiness-probe-missing", Error: field.Required(field.NewPath("spec", "template", "spec").Child("containers").Index(3).Child("readinessProbe"), "")}
	assert.Contains(t, findingKey(newRatchetView(sts), f), "containers[3].readinessProbe")
}
