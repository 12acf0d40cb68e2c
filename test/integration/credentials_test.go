package integration

// Credentials through the real kube-apiserver: a password is generated
// on CREATE only; ratcheting follows what a problem is about, not its list
// index; a Secret stsguard cannot write fails open; credential names beyond
// *_PASSWORD and the defaults of common images are recognised.

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/test/harness"
)

// exempt marks o as exempt from ids, as an object admitted before stsguard
// (or under an older policy) would be stored.
func exempt(o metav1.Object, ids ...string) {
	a := o.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[engine.ExemptAnnotation] = strings.Join(ids, ",")
	a[engine.ExemptReasonAnnotation] = "test: stored before stsguard judged it"
	o.SetAnnotations(a)
}

// unexempt removes what exempt added.
func unexempt(o metav1.Object) {
	a := o.GetAnnotations()
	delete(a, engine.ExemptAnnotation)
	delete(a, engine.ExemptReasonAnnotation)
	o.SetAnnotations(a)
}

// A postgres StatefulSet admitted without a password (here through an
// exemption, as one created before stsguard was installed) gets no
// generated password when its template changes: the database already
// initialised its data never reads POSTGRES_PASSWORD again. The UPDATE
// warns instead and writes no Secret.
func TestPasswordIsNotGeneratedOnUpdate(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	sts := harness.StatefulSet(ns, "pg", "", "postgres:16")
	sts.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "PGDATA", Value: "/var/lib/postgresql/data/pgdata"}}
	exempt(sts, rules.PasswordSecretRef)
	require.NoError(t, c.Create(ctx, sts))
	require.Len(t, sts.Spec.Template.Spec.Containers[0].Env, 1, "exempted: nothing generated")
	w.Take()

	unexempt(sts)
	sts.Spec.Template.Spec.Containers[0].Image = "postgres:16.4"
	require.NoError(t, c.Update(ctx, sts))

	var stored appsv1.StatefulSet
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(sts), &stored))
	env := stored.Spec.Template.Spec.Containers[0].Env
	require.Len(t, env, 1, "no POSTGRES_PASSWORD added on UPDATE: %+v", env)
	assert.Equal(t, "PGDATA", env[0].Name)
	var secret corev1.Secret
	assert.True(t, apierrors.IsNotFound(c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "pg-credentials"}, &secret)),
		"no Secret with a password the database never got")

	got := joined(w.Take())
	assert.Contains(t, got, "spec.template.spec.containers[0].env: Required value: POSTGRES_PASSWORD is not set")
	assert.Contains(t, got, "stsguard generates a password only when a StatefulSet is created")
	assert.Contains(t, got, "set POSTGRES_PASSWORD with valueFrom.secretKeyRef")
	assert.Contains(t, got, "[rule: password-secret-ref]")
	assert.NotContains(t, got, "changed by stsguard: POSTGRES_PASSWORD")

	// CREATE still generates.
	fresh := harness.StatefulSet(ns, "pg2", "", "postgres:16")
	require.NoError(t, c.Create(ctx, fresh))
	require.Len(t, fresh.Spec.Template.Spec.Containers[0].Env, 1)
	assert.Equal(t, "pg2-credentials", fresh.Spec.Template.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name)
}

// weakRefStatefulSet stores a mysql StatefulSet whose MYSQL_ROOT_PASSWORD
// reads a weak Secret key (db/root), exempted at creation as if admitted
// under an older policy, and the Secrets db and db2 (both weak). It waits
// until stsguard's cache has both Secrets.
func weakRefStatefulSet(t *testing.T, c client.Client, ns string) *appsv1.StatefulSet {
	t.Helper()
	ctx := context.Background()
	for _, name := range []string{"db", "db2"} {
		require.NoError(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Data: map[string][]byte{"root": []byte("changeme")}}))
	}
	sts := harness.StatefulSet(ns, "mysql", "", "mysql:8.0")
	sts.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MYSQL_ROOT_PASSWORD", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "root"}}}}
	harness.Eventually(t, "stsguard to see Secrets db and db2", func() bool {
		probe := sts.DeepCopy()
		probe.Name = "probe"
		err := c.Create(ctx, probe, client.DryRunAll)
		probe.Spec.Template.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name = "db2"
		err2 := c.Create(ctx, probe, client.DryRunAll)
		return err != nil && strings.Contains(err.Error(), rules.WeakPassword) && err2 != nil && strings.Contains(err2.Error(), rules.WeakPassword)
	})
	exempt(sts, rules.WeakPassword)
	require.NoError(t, c.Create(ctx, sts))
	unexempt(sts)
	return sts
}

// Ratcheting follows what a problem is about: an UPDATE that points the
// env var at another weak Secret is a new problem (denied), although its
// field path is the one the stored problem has.
func TestRatchetingDeniesANewReferentAtTheSamePath(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	sts := weakRefStatefulSet(t, c, ns)
	w.Take()

	moved := sts.DeepCopy()
	moved.Spec.Template.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name = "db2"
	err := c.Update(context.Background(), moved)
	assert.Equal(t, []string{"spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef"}, harness.InvalidCauses(t, err, rules.WeakPassword))
	assert.Contains(t, err.Error(), `reads Secret "db2" key "root"`)
	assert.NotContains(t, err.Error(), "changeme")
}

// Ratcheting follows what a problem is about: an UPDATE that inserts an env
// var before the stored weak reference keeps it ratcheted (a warning), as
// its list index changed but the problem did not.
func TestRatchetingKeepsAnOldProblemAfterAnInsert(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	sts := weakRefStatefulSet(t, c, ns)
	w.Take()

	inserted := sts.DeepCopy()
	inserted.Spec.Template.Spec.Containers[0].Env = append([]corev1.EnvVar{{Name: "TZ", Value: "UTC"}}, inserted.Spec.Template.Spec.Containers[0].Env...)
	require.NoError(t, c.Update(context.Background(), inserted))
	got := joined(w.Take())
	assert.Contains(t, got, `spec.template.spec.containers[0].env[1].valueFrom.secretKeyRef: Invalid value: MYSQL_ROOT_PASSWORD reads Secret "db" key "root"`)
	assert.Contains(t, got, "has this problem already")
	assert.NotContains(t, got, "changeme")
}

// quotaWithoutSecrets makes the namespace refuse every new Secret, as a
// ResourceQuota of count/secrets: 0 does. envtest runs no quota
// controller, so the status it would compute is set here; the apiserver's
// ResourceQuota admission plugin enforces it.
func quotaWithoutSecrets(t *testing.T, c client.Client, ns string) {
	t.Helper()
	ctx := context.Background()
	hard := corev1.ResourceList{"count/secrets": resource.MustParse("0")}
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-secrets"}, Spec: corev1.ResourceQuotaSpec{Hard: hard}}
	require.NoError(t, c.Create(ctx, q))
	q.Status = corev1.ResourceQuotaStatus{Hard: hard, Used: corev1.ResourceList{"count/secrets": resource.MustParse("0")}}
	require.NoError(t, c.Status().Update(ctx, q))
	harness.Eventually(t, "the quota to refuse Secrets", func() bool {
		err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"}}, client.DryRunAll)
		return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota")
	})
}

// A Secret that password-secret-ref cannot write (here refused by a
// ResourceQuota) does not block the StatefulSet: stsguard admits it
// without the move, says so in a warning, and counts the error.
func TestSecretWriteFailureFailsOpen(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	quotaWithoutSecrets(t, c, ns)
	objs := mysqlWithStrongPassword(t, ns)
	require.NoError(t, c.Create(ctx, objs[0]))
	w.Take()
	errorsBefore := srv.Metric(t, "stsguard_admission_errors_total", map[string]string{"kind": "StatefulSet", "reason": "secret-write"})

	sts := objs[1].(*appsv1.StatefulSet)
	require.NoError(t, c.Create(ctx, sts), "a failed Secret write must not deny the request")

	var stored appsv1.StatefulSet
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(sts), &stored))
	env := stored.Spec.Template.Spec.Containers[0].Env
	require.Len(t, env, 1)
	assert.Nil(t, env[0].ValueFrom, "no reference to a Secret that does not exist")
	assert.Equal(t, strongPassword, env[0].Value, "the literal stays where it was")
	assert.Equal(t, int64(120), *stored.Spec.Template.Spec.TerminationGracePeriodSeconds, "the other defaults are applied")
	var secret corev1.Secret
	assert.True(t, apierrors.IsNotFound(c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "mysql-credentials"}, &secret)))

	got := joined(w.Take())
	assert.Contains(t, got, `spec.template.spec.containers[0].env[0]: Internal error: stsguard could not write Secret "mysql-credentials"`)
	assert.Contains(t, got, "exceeded quota")
	assert.Contains(t, got, "MYSQL_ROOT_PASSWORD stays a literal")
	assert.Contains(t, got, "kubectl create secret generic mysql-credentials --from-literal=mysql-root-password=")
	assert.Contains(t, got, "[rule: password-secret-ref]")
	assert.NotContains(t, got, "changed by stsguard: moved", "a move that did not happen is not reported")
	assertNoLeak(t, got, strongPassword)
	assertNoLeak(t, logs.String(), strongPassword)
	harness.Eventually(t, "the secret-write error counted", func() bool {
		return srv.Metric(t, "stsguard_admission_errors_total", map[string]string{"kind": "StatefulSet", "reason": "secret-write"}) == errorsBefore+1
	})
}

// MinIO's credentials: a default secret key is denied wherever it is
// written, a strong one is moved into the Secret with the access key, and
// a file pointer stays.
func TestMinioCredentialsAreRecognised(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	minio := func(secretKey string) *appsv1.StatefulSet {
		sts := harness.StatefulSet(ns, "minio", "", "minio/minio:RELEASE.2024-01-01T00-00-00Z")
		sts.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{
			{Name: "MINIO_ACCESS_KEY", Value: "minio"},
			{Name: "MINIO_SECRET_KEY", Value: secretKey},
			{Name: "GOOGLE_APPLICATION_CREDENTIALS", Value: "/var/run/gcp/key.json"},
		}
		return sts
	}

	// The manifest public examples copy: denied, without the value.
	err := c.Create(ctx, minio("minio123"))
	assert.Equal(t, []string{"spec.template.spec.containers[0].env[1].value"}, harness.InvalidCauses(t, err, rules.WeakPassword))
	assert.Contains(t, err.Error(), "the password in MINIO_SECRET_KEY is a well-known default password")
	assertNoLeak(t, err.Error(), "minio123")

	// The same in a Secret: denied too.
	err = c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mlpipeline-minio-artifact"},
		StringData: map[string]string{"accesskey": "minio", "secretkey": "minio123"}})
	denied(t, err, "Secret", rules.WeakPassword, "data[secretkey]")
	w.Take()

	// A strong secret key: moved, with the access key; the file pointer stays.
	const strong = "Zq8-minio-s3cr3t-key"
	sts := minio(strong)
	require.NoError(t, c.Create(ctx, sts))
	env := sts.Spec.Template.Spec.Containers[0].Env
	require.Len(t, env, 3)
	for i, name := range []string{"MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"} {
		assert.Equal(t, name, env[i].Name)
		if assert.NotNil(t, env[i].ValueFrom, name) {
			assert.Equal(t, "minio-credentials", env[i].ValueFrom.SecretKeyRef.Name)
			assert.Equal(t, strings.ToLower(strings.ReplaceAll(name, "_", "-")), env[i].ValueFrom.SecretKeyRef.Key)
		}
	}
	assert.Equal(t, corev1.EnvVar{Name: "GOOGLE_APPLICATION_CREDENTIALS", Value: "/var/run/gcp/key.json"}, env[2])
	var secret corev1.Secret
	require.NoError(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "minio-credentials"}, &secret))
	assert.Equal(t, strong, string(secret.Data["minio-secret-key"]))
	got := joined(w.Take())
	assert.Contains(t, got, "moved the literal value of MINIO_SECRET_KEY")
	assertNoLeak(t, got, strong)
	assertNoLeak(t, logs.String(), strong)
}
