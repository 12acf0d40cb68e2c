package rules

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
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

func withContainer(image string, env ...corev1.EnvVar) *appsv1.StatefulSet {
	sts := testStatefulSet("web")
	sts.Spec.Template.Spec.Containers = []corev1.Container{{Name: "db", Image: image, Env: env}}
	return sts
}

// applyPatch applies the mutation's JSON patch to obj as the apiserver does
// and returns the result.
func applyPatch(t *testing.T, obj *appsv1.StatefulSet, m *engine.Mutation) *appsv1.StatefulSet {
	t.Helper()
	doc, err := json.Marshal(obj)
	require.NoError(t, err)
	if len(m.Patch()) == 0 {
		return obj.DeepCopy()
	}
	raw, err := json.Marshal(m.Patch())
	require.NoError(t, err)
	p, err := jsonpatch.DecodePatch(raw)
	require.NoError(t, err)
	out, err := p.Apply(doc)
	require.NoError(t, err, "patch %s", raw)
	res := &appsv1.StatefulSet{}
	require.NoError(t, json.Unmarshal(out, res))
	return res
}

// mutateTwice mutates in, applies the patch, mutates the result again and
// requires the second round to change nothing (idempotence).
func mutateTwice(t *testing.T, e *engine.Engine, in *engine.Input[*appsv1.StatefulSet], lk engine.Lookup) (*appsv1.StatefulSet, *engine.Mutation, engine.Findings) {
	t.Helper()
	before := in.Object.DeepCopy()
	mutated, m, res := mutate(e, in, lk)
	assert.Equal(t, before, in.Object, "the input object must not be modified")
	out := applyPatch(t, in.Object, m)
	assert.Equal(t, mutated, out, "the returned object is the input with the patch applied")
	again := *in
	again.Object = out
	if again.Operation == admissionv1.Update {
		again.OldObject = in.OldObject
	}
	_, m2, _ := mutate(e, &again, m.Lookup(lk))
	assert.Empty(t, m2.Patch(), "mutating the result again must change nothing")
	return out, m, res.Findings
}

func create(sts *appsv1.StatefulSet) *engine.Input[*appsv1.StatefulSet] {
	return &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Create, Object: sts}
}

func TestPasswordSecretRef(t *testing.T) {
	lit := func(name, value string) corev1.EnvVar { return corev1.EnvVar{Name: name, Value: value} }
	cases := []struct {
		name     string
		sts      *appsv1.StatefulSet
		wantKeys []string // keys of the requested Secret; nil for no Secret
		wantEnv  []string // env names that end up as secretKeyRef, in order
	}{
		{"MySQL plaintext root password", withContainer("mysql:8.0", lit("MYSQL_ROOT_PASSWORD", "n0t-a-default-9")),
			[]string{"mysql-root-password"}, []string{"MYSQL_ROOT_PASSWORD"}},
		{"seed MySQL weak password is left for weak-password", withContainer("mysql:8.0", lit("MYSQL_ROOT_PASSWORD", "password")), nil, nil},
		{"secretKeyRef already", withContainer("mysql:8.0", corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "mysql-secret"}, Key: "root-password"}}}),
			nil, []string{"MYSQL_ROOT_PASSWORD"}},
		{"switch, not a credential", withContainer("mysql:8.0", lit("MYSQL_ALLOW_EMPTY_PASSWORD", "yes")), nil, nil},
		{"file, not a credential", withContainer("mysql:8.0", lit("MYSQL_ROOT_PASSWORD_FILE", "/run/secrets/pw")), nil, nil},
		{"empty literal is left for another rule", withContainer("nginx", lit("API_TOKEN", "")), nil, nil},
		{"dependent variable reference is kept", withContainer("nginx", lit("APP_PASSWORD", "$(DB_PASSWORD)")), nil, nil},
		{"token, secret, api key", withContainer("app", lit("GITHUB_TOKEN", "t"), lit("CLIENT_SECRET", "s"), lit("STRIPE_API_KEY", "k"), lit("LOG_LEVEL", "debug")),
			[]string{"client-secret", "github-token", "stripe-api-key"}, []string{"GITHUB_TOKEN", "CLIENT_SECRET", "STRIPE_API_KEY"}},
		{"postgres without password gets one", withContainer("postgres:14"), []string{"postgres-password"}, []string{"POSTGRES_PASSWORD"}},
		{"postgres with trust needs none", withContainer("postgres:14", lit("POSTGRES_HOST_AUTH_METHOD", "trust")), nil, nil},
		{"mysql with random root password needs none", withContainer("mysql", lit("MYSQL_RANDOM_ROOT_PASSWORD", "yes")), nil, nil},
		{"mariadb with its own variable needs none", withContainer("mariadb:11", corev1.EnvVar{Name: "MARIADB_ROOT_PASSWORD", ValueFrom: &corev1.EnvVarSource{}}), nil, []string{"MARIADB_ROOT_PASSWORD"}},
		{"envFrom may provide it", func() *appsv1.StatefulSet {
			s := withContainer("postgres:14")
			s.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{}}}
			return s
		}(), nil, nil},
		{"postgres with other env gets one appended", withContainer("postgres:14", lit("PGDATA", "/data")), []string{"postgres-password"}, []string{"POSTGRES_PASSWORD"}},
		{"access, secret and private keys and credentials", withContainer("minio/minio", lit("MINIO_ACCESS_KEY", "k3y-Id-9"), lit("MINIO_SECRET_KEY", "n0t-a-default-9"),
			lit("AWS_SECRET_ACCESS_KEY", "aws-s3cr3t-9"), lit("JWT_PRIVATE_KEY", "-----BEGIN"), lit("GCP_CREDENTIALS", "{}")),
			[]string{"aws-secret-access-key", "gcp-credentials", "jwt-private-key", "minio-access-key", "minio-secret-key"},
			[]string{"MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "JWT_PRIVATE_KEY", "GCP_CREDENTIALS"}},
		{"weak minio secret key is left for weak-password", withContainer("minio/minio", lit("MINIO_SECRET_KEY", "minio123")), nil, nil},
		{"file pointers and switches stay", withContainer("cp-kafka", lit("GOOGLE_APPLICATION_CREDENTIALS", "/var/run/gcp/key.json"),
			lit("KAFKA_SSL_KEYSTORE_CREDENTIALS", "keystore_creds"), lit("MINIO_SECRET_KEY_FILE", "/run/secrets/minio"),
			lit("CORS_ALLOW_CREDENTIALS", "true"), lit("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")), nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, PasswordSecretRef)
			out, m, fs := mutateTwice(t, e, create(tc.sts), objects())
			assert.Empty(t, fs)
			var refs []string
			for _, env := range out.Spec.Template.Spec.Containers[0].Env {
				if env.ValueFrom != nil {
					refs = append(refs, env.Name)
					assert.Empty(t, env.Value)
				}
			}
			assert.Equal(t, tc.wantEnv, refs)
			if tc.wantKeys == nil {
				assert.Empty(t, m.Secrets())
				return
			}
			require.Len(t, m.Secrets(), 1)
			r := m.Secrets()[0]
			assert.Equal(t, "web-credentials", r.Name)
			assert.True(t, r.Create)
			assert.Equal(t, tc.wantKeys, r.Keys())
			var moved int
			for _, c := range m.Changes() {
				if c.Rule == PasswordSecretRef {
					moved++
				}
			}
			assert.Equal(t, len(tc.wantKeys), moved, "one change per credential")
		})
	}
}

func TestPasswordSecretRefNeverLeaksTheValue(t *testing.T) {
	const value = "s3cr3t-Value"
	e := newEngine(t, PasswordSecretRef)
	sts := withContainer("mysql:8.0", corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", Value: value})
	_, m, _ := mutate(e, create(sts), objects())
	var text strings.Builder
	for _, c := range m.Changes() {
		text.WriteString(c.Message + c.Field)
	}
	patch, _ := json.Marshal(m.Patch())
	text.Write(patch)
	secretJSON, _ := json.Marshal(m.Secrets())
	text.Write(secretJSON)
	text.WriteString(m.Secrets()[0].String())
	assert.NotContains(t, text.String(), value)
	assert.Equal(t, value, string(m.Secrets()[0].Data()["mysql-root-password"]))

	// A conflicting Secret: the denial names the key, never either value.
	lk := objects(asCredentials(&corev1.Secret{Data: map[string][]byte{"mysql-root-password": []byte("other-value")}}))
	_, _, res := mutate(e, create(sts), lk)
	require.Len(t, res.Findings, 1)
	assert.NotContains(t, res.Findings[0].String(), value)
	assert.NotContains(t, res.Findings[0].String(), "other-value")
}

func TestPasswordSecretRefExistingSecret(t *testing.T) {
	managed := map[string]string{credentials.ManagedByLabel: credentials.ManagedByValue}
	sts := withContainer("mysql:8.0", corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", Value: "pw"})
	cases := []struct {
		name       string
		secret     *corev1.Secret
		wantDeny   bool
		wantSecret bool // a write is requested
	}{
		{"same value: reused", &corev1.Secret{Data: map[string][]byte{"mysql-root-password": []byte("pw")}}, false, false},
		{"other value: denied", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: managed}, Data: map[string][]byte{"mysql-root-password": []byte("x")}}, true, false},
		{"managed, key missing: key added", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: managed, ResourceVersion: "7"}, Data: map[string][]byte{"other": []byte("x")}}, false, true},
		{"not managed, key missing: denied", &corev1.Secret{Data: map[string][]byte{"other": []byte("x")}}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, m, res := mutate(newEngine(t, PasswordSecretRef), create(sts), objects(asCredentials(tc.secret)))
			fs := res.Findings
			if tc.wantDeny {
				field.ErrorMatcher{}.ByType().ByField().Test(t, field.ErrorList{field.Forbidden(field.NewPath("spec", "template", "spec", "containers").Index(0).Child("env").Index(0), "")}, fs.Errors())
				assert.Equal(t, engine.Deny, fs[0].Action)
				assert.True(t, m.Empty(), "a denied request gets no patch")
				return
			}
			assert.Empty(t, fs)
			assert.NotEmpty(t, m.Patch())
			if tc.wantSecret {
				require.Len(t, m.Secrets(), 1)
				assert.False(t, m.Secrets()[0].Create)
				assert.Equal(t, "7", m.Secrets()[0].ResourceVersion)
			} else {
				assert.Empty(t, m.Secrets())
			}
		})
	}
}

func TestPasswordSecretRefOnUpdateOnlyWithTemplateChange(t *testing.T) {
	old := withContainer("mysql:8.0", corev1.EnvVar{Name: "MYSQL_ROOT_PASSWORD", Value: "pw"})
	scaled := old.DeepCopy()
	scaled.Spec.Replicas = ptr.To[int32](5)
	_, m, _ := mutate(newEngine(t, PasswordSecretRef), &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, Object: scaled, OldObject: old}, objects())
	assert.True(t, m.Empty(), "a change that would by itself roll the pods is never made on a plain scale")

	changed := old.DeepCopy()
	changed.Spec.Template.Spec.Containers[0].Image = "mysql:8.4"
	_, m, _ = mutate(newEngine(t, PasswordSecretRef), &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, Object: changed, OldObject: old}, objects())
	assert.Len(t, m.Secrets(), 1)
}

// TestPasswordGeneratedOnCreateOnly: a database that already holds data
// never reads its *_PASSWORD variable again, so a password generated on an
// UPDATE would not be the one the database uses. On UPDATE the mutator
// warns instead, and still moves literals (the literal is what the
// database got).
func TestPasswordGeneratedOnCreateOnly(t *testing.T) {
	managed := map[string]string{credentials.ManagedByLabel: credentials.ManagedByValue}
	noPassword := withContainer("postgres:14", corev1.EnvVar{Name: "PGDATA", Value: "/data"})
	imageChanged := func(s *appsv1.StatefulSet) *appsv1.StatefulSet {
		s = s.DeepCopy()
		s.Spec.Template.Spec.Containers[0].Image = "postgres:16"
		return s
	}
	envPath := podSpecPath.Child("containers").Index(0).Child("env")
	cases := []struct {
		name      string
		in        *engine.Input[*appsv1.StatefulSet]
		secret    *corev1.Secret
		wantKeys  []string // keys of the requested Secret; nil for none
		wantRefs  []string // env names that end up as secretKeyRef
		wantWarn  bool     // a Warn finding at spec.template.spec.containers[0].env
		wantHints []string // more the warning must say
	}{
		{name: "CREATE generates", in: create(noPassword),
			wantKeys: []string{"postgres-password"}, wantRefs: []string{"POSTGRES_PASSWORD"}},
		{name: "UPDATE with a template change warns and generates nothing",
			in:       &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, Object: imageChanged(noPassword), OldObject: noPassword},
			wantWarn: true, wantHints: []string{"POSTGRES_PASSWORD is not set", "only when a StatefulSet is created", "never reads POSTGRES_PASSWORD again",
				"valueFrom.secretKeyRef", "POSTGRES_PASSWORD_FILE", "POSTGRES_HOST_AUTH_METHOD=trust"}},
		{name: "UPDATE that drops the reference points at the key stsguard's Secret holds",
			in: &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, Object: imageChanged(noPassword),
				OldObject: withContainer("postgres:14", keyRef("POSTGRES_PASSWORD", "web-credentials", "postgres-password", false))},
			secret:   &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: managed}, Data: map[string][]byte{"postgres-password": []byte("generated-at-create")}},
			wantWarn: true, wantHints: []string{`Secret "web-credentials" already holds key "postgres-password"`}},
		{name: "UPDATE still moves a literal",
			in: &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update,
				Object:    imageChanged(withContainer("postgres:14", corev1.EnvVar{Name: "POSTGRES_PASSWORD", Value: "n0t-a-default-9"})),
				OldObject: withContainer("postgres:14", corev1.EnvVar{Name: "POSTGRES_PASSWORD", Value: "n0t-a-default-9"})},
			wantKeys: []string{"postgres-password"}, wantRefs: []string{"POSTGRES_PASSWORD"}},
		{name: "UPDATE without a template change says nothing",
			in: &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, Object: func() *appsv1.StatefulSet {
				s := noPassword.DeepCopy()
				s.Spec.Replicas = ptr.To[int32](5)
				return s
			}(), OldObject: noPassword}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lk := objects()
			if tc.secret != nil {
				require.NoError(t, lk.Add(asCredentials(tc.secret)))
			}
			out, m, fs := mutateTwice(t, newEngine(t, PasswordSecretRef), tc.in, lk)
			var refs []string
			for _, env := range out.Spec.Template.Spec.Containers[0].Env {
				if env.ValueFrom != nil {
					refs = append(refs, env.Name)
				}
			}
			assert.Equal(t, tc.wantRefs, refs)
			if tc.wantKeys == nil {
				assert.Empty(t, m.Secrets(), "no Secret is written")
			} else if assert.Len(t, m.Secrets(), 1) {
				assert.Equal(t, tc.wantKeys, m.Secrets()[0].Keys())
			}
			if !tc.wantWarn {
				assert.Empty(t, fs)
				return
			}
			field.ErrorMatcher{}.ByType().ByField().Test(t, field.ErrorList{field.Required(envPath, "")}, fs.Errors())
			require.Len(t, fs, 1)
			assert.Equal(t, engine.Warn, fs[0].Action, "a warning, never a denial")
			assert.Equal(t, PasswordSecretRef, fs[0].Rule)
			for _, h := range tc.wantHints {
				assert.Contains(t, fs[0].String(), h)
			}
			assert.True(t, strings.HasSuffix(fs[0].String(), "[rule: password-secret-ref]"))
			assert.NotContains(t, fs[0].String(), "generated-at-create")
		})
	}
}

func TestGeneratedPassword(t *testing.T) {
	pw, err := generatePassword(bytes.NewReader(bytes.Repeat([]byte{255, 1}, 64)))
	require.NoError(t, err)
	assert.Len(t, pw, credentials.GeneratedPasswordLength)
	assert.Equal(t, strings.Repeat("b", credentials.GeneratedPasswordLength), string(pw), "bytes >= 248 are rejected, not folded")
	_, err = generatePassword(bytes.NewReader(nil))
	assert.Error(t, err)
}

func TestTerminationGracePeriod(t *testing.T) {
	cases := []struct {
		name  string
		image string
		set   *int64
		want  *int64
	}{
		{"cassandra from unset", "cassandra:4.0", nil, ptr.To[int64](300)},
		{"cassandra from the default", "cassandra:4.0", ptr.To[int64](30), ptr.To[int64](300)},
		{"postgres by registry path", "registry.example.com:5000/team/postgres:14@sha256:abc", nil, ptr.To[int64](120)},
		{"kafka", "confluentinc/cp-kafka:7.6", ptr.To[int64](30), ptr.To[int64](60)},
		{"explicit value is kept", "cassandra:4.0", ptr.To[int64](45), ptr.To[int64](45)},
		{"unknown image unchanged", "nginx", ptr.To[int64](30), ptr.To[int64](30)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sts := withContainer(tc.image)
			sts.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "POSTGRES_PASSWORD_FILE", Value: "/x"}}
			sts.Spec.Template.Spec.TerminationGracePeriodSeconds = tc.set
			out, _, _ := mutateTwice(t, newEngine(t, TerminationGracePeriod), create(sts), objects())
			assert.Equal(t, tc.want, out.Spec.Template.Spec.TerminationGracePeriodSeconds)
		})
	}
}

func TestRolloutPartition(t *testing.T) {
	base := func(annotation string, strategy appsv1.StatefulSetUpdateStrategy) *appsv1.StatefulSet {
		s := testStatefulSet("web")
		s.Spec.Replicas = ptr.To[int32](5)
		if annotation != "" {
			s.Annotations = map[string]string{CanaryAnnotation: annotation}
		}
		s.Spec.UpdateStrategy = strategy
		return s
	}
	rolling := func(p int32) appsv1.StatefulSetUpdateStrategy {
		return appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To(p)}}
	}
	newImage := func(s *appsv1.StatefulSet) *appsv1.StatefulSet {
		s = s.DeepCopy()
		s.Spec.Template.Spec.Containers[0].Image = "nginx:2"
		return s
	}
	cases := []struct {
		name          string
		old, new      *appsv1.StatefulSet
		wantPartition *int32
		wantFinding   bool
	}{
		{"canary of 1 on an image change", base("1", rolling(0)), newImage(base("1", rolling(0))), ptr.To[int32](4), false},
		{"canary of 2", base("2", rolling(0)), newImage(base("2", rolling(0))), ptr.To[int32](3), false},
		{"canary larger than replicas", base("9", rolling(0)), newImage(base("9", rolling(0))), ptr.To[int32](0), false},
		{"no template change", base("1", rolling(0)), base("1", rolling(0)), ptr.To[int32](0), false},
		{"update sets the partition itself", base("1", rolling(0)), newImage(base("1", rolling(2))), ptr.To[int32](2), false},
		{"no annotation", base("", rolling(0)), newImage(base("", rolling(0))), ptr.To[int32](0), false},
		{"invalid annotation", base("one", rolling(0)), newImage(base("one", rolling(0))), ptr.To[int32](0), true},
		{"zero is invalid", base("0", rolling(0)), newImage(base("0", rolling(0))), ptr.To[int32](0), true},
		{"implicit partition made explicit", base("", rolling(0)), base("", appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType}), ptr.To[int32](0), false},
		{"undefaulted strategy with canary", base("1", appsv1.StatefulSetUpdateStrategy{}), newImage(base("1", appsv1.StatefulSetUpdateStrategy{})), ptr.To[int32](4), false},
		{"OnDelete warns", base("1", appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}),
			newImage(base("1", appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType})), nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, Object: tc.new, OldObject: tc.old}
			out, _, fs := mutateTwice(t, newEngine(t, RolloutPartition), in, objects())
			var got *int32
			if out.Spec.UpdateStrategy.RollingUpdate != nil {
				got = out.Spec.UpdateStrategy.RollingUpdate.Partition
			}
			assert.Equal(t, tc.wantPartition, got)
			if tc.wantFinding {
				field.ErrorMatcher{}.ByType().ByField().Test(t, field.ErrorList{field.Invalid(canaryPath, "", "")}, fs.Errors())
				assert.Equal(t, engine.Warn, fs[0].Action)
			} else {
				assert.Empty(t, fs)
			}
		})
	}
}

func TestCredentialsKey(t *testing.T) {
	assert.Equal(t, "mysql-root-password", CredentialsKey("MYSQL_ROOT_PASSWORD"))
	assert.Equal(t, "a.b-c-d", CredentialsKey("A.b-c d"))
}

// asCredentials names s as the web StatefulSet's credentials Secret.
func asCredentials(s *corev1.Secret) *corev1.Secret {
	s = s.DeepCopy()
	s.Namespace, s.Name = "ns", CredentialsSecretName("web")
	return s
}
