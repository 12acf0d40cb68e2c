package rules

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/engine"
)

// TestRatchetingFollowsWhatAProblemIsAbout: on UPDATE a Deny finding is
// downgraded to Warn when the stored object has the same problem. "The
// same" is decided by what the problem is about (the rule, the container
// and env var by name, the Service or Secret and key it refers to), never by
// list indexes: inserting an env var or a container before an old problem
// keeps it ratcheted, and pointing at another referent with the same problem
// is a new problem.
func TestRatchetingFollowsWhatAProblemIsAbout(t *testing.T) {
	lit := func(n, v string) corev1.EnvVar { return corev1.EnvVar{Name: n, Value: v} }
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
	container := func(name string, withProbe bool, env ...corev1.EnvVar) corev1.Container {
		c := corev1.Container{Name: name, Image: "mysql:8.0", Env: env}
		if withProbe {
			c.ReadinessProbe = probe
		}
		return c
	}
	withContainers := func(serviceName string, cs ...corev1.Container) *appsv1.StatefulSet {
		s := testStatefulSet(serviceName)
		s.Spec.Template.Spec.Containers = cs
		return s
	}
	nonHeadless := func(name string) *corev1.Service {
		s := svc("10.0.0.1", map[string]string{"app": "web"})
		s.Name = name
		return s
	}
	weak := lit("MYSQL_ROOT_PASSWORD", "password")
	weakRef := func(secretName, key string) corev1.EnvVar {
		return keyRef("MYSQL_ROOT_PASSWORD", secretName, key, false)
	}
	envPath := func(c, e int) *field.Path { return podSpecPath.Child("containers").Index(c).Child("env").Index(e) }

	type want struct {
		field  string
		action engine.Action
	}
	cases := []struct {
		name     string
		rule     string
		old, new *appsv1.StatefulSet
		objs     []runtime.Object
		want     []want
	}{
		// Same problem, list indexes shifted: still ratcheted.
		{"env var inserted before a weak literal", WeakPassword,
			withContainers("", container("db", true, weak)),
			withContainers("", container("db", true, lit("TZ", "UTC"), weak)), nil,
			[]want{{envPath(0, 1).Child("value").String(), engine.Warn}}},
		{"container inserted before", WeakPassword,
			withContainers("", container("db", true, weak)),
			withContainers("", container("sidecar", true), container("db", true, weak)), nil,
			[]want{{envPath(1, 0).Child("value").String(), engine.Warn}}},
		{"env var inserted before a reference to a weak Secret", WeakPassword,
			withContainers("", container("db", true, weakRef("db", "root"))),
			withContainers("", container("db", true, lit("TZ", "UTC"), weakRef("db", "root"))),
			[]runtime.Object{secret("db", map[string]string{"root": "changeme"})},
			[]want{{envPath(0, 1).Child("valueFrom", "secretKeyRef").String(), engine.Warn}}},
		{"non-headless Service, unrelated change", HeadlessServiceNotHeadless,
			withContainers("web", container("db", true)),
			func() *appsv1.StatefulSet {
				s := withContainers("web", container("db", true))
				s.Spec.Replicas = ptr.To[int32](1)
				return s
			}(), []runtime.Object{nonHeadless("web")},
			[]want{{"spec.serviceName", engine.Warn}}},
		{"container without probe after an inserted one that has none either", ReadinessProbeMissing,
			withContainers("", container("db", false)),
			withContainers("", container("sidecar", false), container("db", false)), nil,
			[]want{
				{podSpecPath.Child("containers").Index(0).Child("readinessProbe").String(), engine.Deny}, // sidecar: new
				{podSpecPath.Child("containers").Index(1).Child("readinessProbe").String(), engine.Warn}, // db: stored already
			}},

		// Same field path, another referent: a new problem.
		{"serviceName moved to another non-headless Service", HeadlessServiceNotHeadless,
			withContainers("web", container("db", true)),
			withContainers("web2", container("db", true)),
			[]runtime.Object{nonHeadless("web"), nonHeadless("web2")},
			[]want{{"spec.serviceName", engine.Deny}}},
		{"weak literal under another env var at the same index", WeakPassword,
			withContainers("", container("db", true, lit("MYSQL_PASSWORD", "password"))),
			withContainers("", container("db", true, weak)), nil,
			[]want{{envPath(0, 0).Child("value").String(), engine.Deny}}},
		{"another weak literal in the same env var", WeakPassword,
			withContainers("", container("db", true, weak)),
			withContainers("", container("db", true, lit("MYSQL_ROOT_PASSWORD", "admin"))), nil,
			[]want{{envPath(0, 0).Child("value").String(), engine.Deny}}},
		{"reference moved to another weak Secret key", WeakPassword,
			withContainers("", container("db", true, weakRef("db", "root"))),
			withContainers("", container("db", true, weakRef("other", "root"))),
			[]runtime.Object{secret("db", map[string]string{"root": "changeme"}), secret("other", map[string]string{"root": "changeme"})},
			[]want{{envPath(0, 0).Child("valueFrom", "secretKeyRef").String(), engine.Deny}}},
		{"weak literal in a renamed container", WeakPassword,
			withContainers("", container("db", true, weak)),
			withContainers("", container("mysql", true, weak)), nil,
			[]want{{envPath(0, 0).Child("value").String(), engine.Deny}}},
		{"missing Secret replaced by another missing one", SecretRefMissing,
			withContainers("", container("db", true, weakRef("gone", "root"))),
			withContainers("", container("db", true, lit("TZ", "UTC"), weakRef("also-gone", "root"))), nil,
			[]want{{envPath(0, 1).Child("valueFrom", "secretKeyRef").String(), engine.Deny}}},
		{"missing Secret, env var inserted before", SecretRefMissing,
			withContainers("", container("db", true, weakRef("gone", "root"))),
			withContainers("", container("db", true, lit("TZ", "UTC"), weakRef("gone", "root"))), nil,
			[]want{{envPath(0, 1).Child("valueFrom", "secretKeyRef").String(), engine.Warn}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := only(testConfig(), tc.rule)
			cfg.Actions[tc.rule] = engine.Deny
			e, err := New(cfg)
			require.NoError(t, err)
			got := validate(e, &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, Object: tc.new, OldObject: tc.old},
				objects(tc.objs...)).Findings
			var have []want
			for _, f := range got {
				have = append(have, want{f.Error.Field, f.Action})
				if f.Action == engine.Warn {
					assert.Contains(t, f.Error.Detail, "has this problem already")
				}
			}
			assert.Equal(t, tc.want, have)
		})
	}
}
