package rules

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stsguard/stsguard/credentials"
	"github.com/stsguard/stsguard/engine"
)

// TestWithoutSecret: when the Secret cannot be written, every change of
// password-secret-ref goes (the moved literal, the generated password, the
// rewritten last-applied annotation), the other mutators' changes stay, and
// one Warn finding per env var says what stayed as it was.
func TestWithoutSecret(t *testing.T) {
	const value = "n0t-a-default-9"
	envPath := podSpecPath.Child("containers").Index(0).Child("env")
	cases := []struct {
		name      string
		in        func(t *testing.T) *engine.Input[*appsv1.StatefulSet]
		wantField []*field.Path
		wantText  []string
	}{
		{"moved literals, with kubectl's last-applied configuration", func(t *testing.T) *engine.Input[*appsv1.StatefulSet] {
			return create(withLastApplied(t, withContainer("mysql:8.0",
				corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", Value: value}, corev1.EnvVar{Name: "MYSQL_PASSWORD", Value: value + "x"})))
		}, []*field.Path{envPath.Index(0), envPath.Index(1)},
			[]string{"MYSQL_ROOT_PASSWORD stays a literal", "MYSQL_PASSWORD stays a literal", "quota exceeded", `Secret "web-credentials"`}},
		{"a generated password", func(t *testing.T) *engine.Input[*appsv1.StatefulSet] { return create(withContainer("postgres:16")) },
			[]*field.Path{envPath.Key("POSTGRES_PASSWORD")}, []string{"no password was generated for POSTGRES_PASSWORD"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, PasswordSecretRef, TerminationGracePeriod)
			in := tc.in(t)
			_, m, res := mutate(e, in, objects())
			require.Empty(t, res.Findings)
			require.Len(t, m.Secrets(), 1)
			var passwordOps int
			for _, c := range m.Changes() {
				if c.Rule == PasswordSecretRef {
					passwordOps++
				}
			}
			require.NotZero(t, passwordOps)

			out, fs := e.WithoutSecret(m, m.Secrets()[0], "quota exceeded")
			assert.Empty(t, out.Secrets())
			for _, c := range out.Changes() {
				assert.NotEqual(t, PasswordSecretRef, c.Rule, "no change that relies on the Secret is left: %s", c.Field)
			}
			require.Len(t, out.Patch(), 1, "the grace period is still raised")
			assert.Equal(t, "/spec/template/spec/terminationGracePeriodSeconds", out.Patch()[0].Path)
			assert.Len(t, m.Changes(), passwordOps+1, "m itself is not modified")

			var want field.ErrorList
			for _, p := range tc.wantField {
				want = append(want, &field.Error{Type: field.ErrorTypeInternal, Field: p.String()})
			}
			field.ErrorMatcher{}.ByType().ByField().Test(t, want, fs.Errors())
			text := ""
			for _, f := range fs {
				assert.Equal(t, engine.Warn, f.Action)
				assert.Equal(t, PasswordSecretRef, f.Rule)
				assert.True(t, strings.HasSuffix(f.String(), "[rule: password-secret-ref]"))
				text += f.String() + "\n"
			}
			for _, s := range tc.wantText {
				assert.Contains(t, text, s)
			}
			assert.NotContains(t, text, value)

			// The patched object keeps its literals and its annotation.
			patched := applyPatch(t, in.Object, out)
			assert.Equal(t, in.Object.Spec.Template.Spec.Containers[0].Env, patched.Spec.Template.Spec.Containers[0].Env)
			assert.Equal(t, in.Object.Annotations, patched.Annotations)
		})
	}

	// A request the mutation does not hold changes nothing.
	e := newEngine(t, PasswordSecretRef)
	_, m, _ := mutate(e, create(withContainer("postgres:16")), objects())
	out, fs := e.WithoutSecret(m, &credentials.SecretRequest{Name: "other"}, "x")
	assert.Same(t, m, out)
	assert.Empty(t, fs)
}
