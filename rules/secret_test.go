package rules

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/credentials"
	"github.com/stsguard/stsguard/engine"
)

func secret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func keyRef(env, secretName, key string, optional bool) corev1.EnvVar {
	return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secretName}, Key: key, Optional: ptr.To(optional)}}}
}

// dbWith is the web StatefulSet running image with env, a secret volume
// "tls" (items ca.crt) and an imagePullSecret "regcred".
func dbWith(image string, env ...corev1.EnvVar) *appsv1.StatefulSet {
	sts := withContainer(image, env...)
	sts.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName: "tls", Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}}}}
	sts.Spec.Template.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
	return sts
}

func TestSecretRefMissing(t *testing.T) {
	env := podSpecPath.Child("containers").Index(0).Child("env")
	full := []*corev1.Secret{secret("db", map[string]string{"root-password": "S7rong-enough-x"}), secret("tls", map[string]string{"ca.crt": "x"}), secret("regcred", nil)}
	cases := []struct {
		name    string
		sts     *appsv1.StatefulSet
		secrets []*corev1.Secret
		dryRun  bool
		want    field.ErrorList
	}{
		{"everything exists", dbWith("mysql", keyRef("MYSQL_ROOT_PASSWORD", "db", "root-password", false)), full, false, nil},
		{"Secret missing", dbWith("mysql", keyRef("MYSQL_ROOT_PASSWORD", "nope", "root-password", false)), full, false,
			field.ErrorList{field.NotFound(env.Index(0).Child("valueFrom", "secretKeyRef"), "")}},
		{"key missing", dbWith("mysql", keyRef("MYSQL_ROOT_PASSWORD", "db", "password", false)), full, false,
			field.ErrorList{field.NotFound(env.Index(0).Child("valueFrom", "secretKeyRef"), "")}},
		{"optional reference", dbWith("mysql", keyRef("MYSQL_ROOT_PASSWORD", "nope", "x", true)), full, false, nil},
		{"volume item and pull secret missing", dbWith("mysql", keyRef("MYSQL_ROOT_PASSWORD", "db", "root-password", false)), full[:1], false,
			field.ErrorList{
				field.NotFound(podSpecPath.Child("imagePullSecrets").Index(0), ""),
				field.NotFound(podSpecPath.Child("volumes").Index(0).Child("secret", "items").Index(0), ""),
			}},
		{"credentials Secret a dry run would have created", dbWith("mysql", keyRef("MYSQL_ROOT_PASSWORD", "web-credentials", "mysql-root-password", false)), full, true, nil},
		{"credentials Secret missing for real", dbWith("mysql", keyRef("MYSQL_ROOT_PASSWORD", "web-credentials", "mysql-root-password", false)), full, false,
			field.ErrorList{field.NotFound(env.Index(0).Child("valueFrom", "secretKeyRef"), "")}},
	}
	e := newEngine(t, SecretRefMissing)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lk := objects()
			for _, s := range tc.secrets {
				require.NoError(t, lk.Add(s))
			}
			got := validate(e, &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Create, Object: tc.sts, DryRun: tc.dryRun}, lk).Findings
			field.ErrorMatcher{}.ByType().ByField().Test(t, tc.want, got.Errors())
			for _, f := range got {
				assert.Equal(t, engine.Warn, f.Action)
				assert.NotContains(t, f.String(), "S7rong-enough-x")
			}
		})
	}
}

func TestSecretKeyRemovedAndDelete(t *testing.T) {
	sts := dbWith("mysql", keyRef("MYSQL_ROOT_PASSWORD", "db", "root-password", false), keyRef("OPTIONAL_TOKEN", "db", "token", true))
	old := secret("db", map[string]string{"root-password": "S7rong-enough-x", "token": "t", "unused": "u"})
	drop := func(keys ...string) *corev1.Secret {
		s := old.DeepCopy()
		for _, k := range keys {
			delete(s.Data, k)
		}
		return s
	}
	cases := []struct {
		name  string
		in    *engine.Input[*corev1.Secret]
		stss  []*appsv1.StatefulSet
		want  field.ErrorList
		rules []string
	}{
		{"referenced key removed", &engine.Input[*corev1.Secret]{Operation: admissionv1.Update, Object: drop("root-password"), OldObject: old}, []*appsv1.StatefulSet{sts},
			field.ErrorList{field.Forbidden(dataPath.Key("root-password"), "")}, []string{SecretKeyRemoved}},
		{"optional key removed", &engine.Input[*corev1.Secret]{Operation: admissionv1.Update, Object: drop("token"), OldObject: old}, []*appsv1.StatefulSet{sts}, nil, nil},
		{"unused key removed", &engine.Input[*corev1.Secret]{Operation: admissionv1.Update, Object: drop("unused"), OldObject: old}, []*appsv1.StatefulSet{sts}, nil, nil},
		{"key removed while the StatefulSet is deleted", &engine.Input[*corev1.Secret]{Operation: admissionv1.Update, Object: drop("root-password"), OldObject: old}, []*appsv1.StatefulSet{deleting(sts)}, nil, nil},
		{"delete of a used Secret", &engine.Input[*corev1.Secret]{Operation: admissionv1.Delete, OldObject: old}, []*appsv1.StatefulSet{sts},
			field.ErrorList{field.Forbidden(metadataNamePath, "")}, []string{SecretInUseDelete}},
		{"delete of a pull secret", &engine.Input[*corev1.Secret]{Operation: admissionv1.Delete, OldObject: secret("regcred", nil)}, []*appsv1.StatefulSet{sts},
			field.ErrorList{field.Forbidden(metadataNamePath, "")}, []string{SecretInUseDelete}},
		{"delete of an unused Secret", &engine.Input[*corev1.Secret]{Operation: admissionv1.Delete, OldObject: secret("other", nil)}, []*appsv1.StatefulSet{sts}, nil, nil},
	}
	e := newEngine(t, SecretKeyRemoved, SecretInUseDelete)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lk := objects()
			for _, s := range tc.stss {
				require.NoError(t, lk.Add(s))
			}
			got := validate(e, tc.in, lk).Findings
			field.ErrorMatcher{}.ByType().ByField().Test(t, tc.want, got.Errors())
			var ids []string
			for _, f := range got {
				ids = append(ids, f.Rule)
				assert.Contains(t, f.Error.Detail, `StatefulSet "web"`)
				assert.NotContains(t, f.String(), "S7rong-enough-x")
			}
			assert.Equal(t, tc.rules, ids)
		})
	}
}

func TestWeakPassword(t *testing.T) {
	env := podSpecPath.Child("containers").Index(0).Child("env")
	lit := func(n, v string) corev1.EnvVar { return corev1.EnvVar{Name: n, Value: v} }
	t.Run("StatefulSet", func(t *testing.T) {
		cases := []struct {
			name    string
			sts     *appsv1.StatefulSet
			secrets []*corev1.Secret
			want    field.ErrorList
		}{
			{"seed literal password", withContainer("mysql:5.7", lit("MYSQL_ROOT_PASSWORD", "password")), nil,
				field.ErrorList{field.Invalid(env.Index(0).Child("value"), "", "")}},
			{"empty literal", withContainer("postgres", lit("POSTGRES_PASSWORD", "")), nil,
				field.ErrorList{field.Invalid(env.Index(0).Child("value"), "", "")}},
			{"profile env not matching the pattern", withContainer("rabbitmq", lit("RABBITMQ_DEFAULT_PASS", "guest")), nil,
				field.ErrorList{field.Invalid(env.Index(0).Child("value"), "", "")}},
			{"minio default secret key", withContainer("minio/minio", lit("MINIO_ACCESS_KEY", "minio"), lit("MINIO_SECRET_KEY", "minio123")), nil,
				field.ErrorList{field.Invalid(env.Index(1).Child("value"), "", "")}},
			{"minio default root password", withContainer("minio/minio", lit("MINIO_ROOT_USER", "minioadmin"), lit("MINIO_ROOT_PASSWORD", "minioadmin")), nil,
				field.ErrorList{field.Invalid(env.Index(1).Child("value"), "", "")}},
			{"an empty access key or token is not a password", withContainer("app", lit("AWS_ACCESS_KEY", ""), lit("GITHUB_TOKEN", ""), lit("JWT_PRIVATE_KEY", "")), nil, nil},
			{"strong literal (moved by password-secret-ref, not weak)", withContainer("mysql", lit("MYSQL_ROOT_PASSWORD", "n0t-a-default-9")), nil, nil},
			{"switch is not a password", withContainer("mysql", lit("MYSQL_ALLOW_EMPTY_PASSWORD", "")), nil, nil},
			{"variable reference", withContainer("mysql", lit("MYSQL_PASSWORD", "$(OTHER)")), nil, nil},
			{"weak value in the referenced Secret", withContainer("mysql", keyRef("MYSQL_ROOT_PASSWORD", "db", "root", false)),
				[]*corev1.Secret{secret("db", map[string]string{"root": "changeme"})},
				field.ErrorList{field.Invalid(env.Index(0).Child("valueFrom", "secretKeyRef"), "", "")}},
			{"strong value in the referenced Secret", withContainer("mysql", keyRef("MYSQL_ROOT_PASSWORD", "db", "root", false)),
				[]*corev1.Secret{secret("db", map[string]string{"root": "n0t-a-default-9"})}, nil},
			{"missing Secret is another rule's", withContainer("mysql", keyRef("MYSQL_ROOT_PASSWORD", "db", "root", false)), nil, nil},
		}
		e := newEngine(t, WeakPassword)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				lk := objects()
				for _, s := range tc.secrets {
					require.NoError(t, lk.Add(s))
				}
				got := validate(e, create(tc.sts), lk).Findings
				field.ErrorMatcher{}.ByType().ByField().Test(t, tc.want, got.Errors())
				for _, f := range got {
					assert.Equal(t, engine.Deny, f.Action)
					assert.NotContains(t, f.String(), `"password"`, "the value is never echoed")
					assert.NotContains(t, f.String(), "changeme")
					assert.NotContains(t, f.String(), "guest")
					assert.NotContains(t, f.String(), `"minio123"`)
					assert.NotContains(t, f.String(), `"minioadmin"`)
				}
			})
		}
	})
	t.Run("Secret", func(t *testing.T) {
		user := withContainer("mysql", keyRef("MYSQL_ROOT_PASSWORD", "db", "root", false))
		cases := []struct {
			name   string
			op     admissionv1.Operation
			secret *corev1.Secret
			old    *corev1.Secret
			want   field.ErrorList
			action engine.Action
		}{
			{"key named like a password", admissionv1.Create, secret("app", map[string]string{"password": "password"}), nil,
				field.ErrorList{field.Invalid(dataPath.Key("password"), "", "")}, engine.Deny},
			{"key used as a password", admissionv1.Create, secret("db", map[string]string{"root": "admin\n"}), nil,
				field.ErrorList{field.Invalid(dataPath.Key("root"), "", "")}, engine.Deny},
			{"empty password", admissionv1.Create, secret("app", map[string]string{"db-password": ""}), nil,
				field.ErrorList{field.Invalid(dataPath.Key("db-password"), "", "")}, engine.Deny},
			{"minio artifact Secret", admissionv1.Create, secret("mlpipeline-minio-artifact", map[string]string{"accesskey": "minio", "secretkey": "minio123"}), nil,
				field.ErrorList{field.Invalid(dataPath.Key("secretkey"), "", "")}, engine.Deny},
			{"strong", admissionv1.Create, secret("app", map[string]string{"password": "n0t-a-default-9"}), nil, nil, ""},
			{"weak value under another key", admissionv1.Create, secret("app", map[string]string{"username": "admin"}), nil, nil, ""},
			{"already weak before the update", admissionv1.Update, secret("app", map[string]string{"password": "root"}), secret("app", map[string]string{"password": "root"}),
				field.ErrorList{field.Invalid(dataPath.Key("password"), "", "")}, engine.Warn},
			{"made weak by the update", admissionv1.Update, secret("app", map[string]string{"password": "root"}), secret("app", map[string]string{"password": "n0t-a-default-9"}),
				field.ErrorList{field.Invalid(dataPath.Key("password"), "", "")}, engine.Deny},
		}
		e := newEngine(t, WeakPassword)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got := validate(e, &engine.Input[*corev1.Secret]{Operation: tc.op, Object: tc.secret, OldObject: tc.old}, objects(user)).Findings
				field.ErrorMatcher{}.ByType().ByField().Test(t, tc.want, got.Errors())
				for _, f := range got {
					assert.Equal(t, tc.action, f.Action)
					for _, v := range tc.secret.Data {
						if len(strings.TrimSpace(string(v))) > 0 {
							assert.NotContains(t, f.String(), `"`+strings.TrimSpace(string(v))+`"`, "the value is never echoed")
						}
					}
				}
			})
		}
	})
}

// TestMutationLookupSeesPlannedSecrets: the mutated object is judged in the
// world the mutation leaves.
func TestMutationLookupSeesPlannedSecrets(t *testing.T) {
	e := newEngine(t, PasswordSecretRef, WeakPassword, SecretRefMissing)
	// A weak literal is not moved: weak-password reports it where it was written.
	in := create(withContainer("mysql:5.7", corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", Value: "password"}))
	mutated, m, res := mutate(newEngine(t, PasswordSecretRef), in, objects())
	require.Empty(t, res.Findings)
	require.Empty(t, m.Secrets())
	got := validate(e, &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Create, Object: mutated}, m.Lookup(objects())).Findings
	field.ErrorMatcher{}.ByType().ByField().Test(t, field.ErrorList{
		field.Invalid(podSpecPath.Child("containers").Index(0).Child("env").Index(0).Child("value"), "", ""),
	}, got.Errors())

	// A generated password lands in the planned Secret, which the lookup sees.
	in = create(withContainer("postgres:16"))
	mutated, m, _ = mutate(e, in, objects())
	require.Len(t, m.Secrets(), 1)
	sec, err := m.Lookup(objects()).Secret(context.Background(), "ns", "web-credentials")
	require.NoError(t, err)
	assert.Len(t, sec.Data["postgres-password"], credentials.GeneratedPasswordLength)
	assert.Empty(t, validate(e, &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Create, Object: mutated}, m.Lookup(objects())).Findings)

	// A strong literal: the planned Secret satisfies secret-ref-missing.
	in = create(withContainer("mysql:5.7", corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", Value: "n0t-a-default-9"}))
	mutated, m, _ = mutate(e, in, objects())
	assert.Empty(t, validate(e, &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Create, Object: mutated}, m.Lookup(objects())).Findings)
}
