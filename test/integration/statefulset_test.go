package integration

import (
	"context"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/credentials"
	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/test/harness"
)

func TestStatefulSetWithoutServiceIsCreatedWithWarning(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	sts := harness.StatefulSet(ns, "web", "web", "nginx")
	require.NoError(t, c.Create(context.Background(), sts))
	got := w.Take()
	require.Len(t, got, 1, "warnings: %q", got)
	assert.Contains(t, got[0], `spec.serviceName: Not found: "web"`)
	assert.Contains(t, got[0], "[rule: headless-service-missing]")
}

func TestStatefulSetWithClusterIPServiceIsDenied(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	require.NoError(t, c.Create(ctx, harness.Service(ns, "web", "", map[string]string{"app": "web"})))
	err := c.Create(ctx, harness.StatefulSet(ns, "web", "web", "nginx"))
	fields := harness.InvalidCauses(t, err, rules.HeadlessServiceNotHeadless)
	assert.Equal(t, []string{"spec.serviceName"}, fields)
	assert.Contains(t, err.Error(), `StatefulSet.apps "web" is invalid: spec.serviceName: Invalid value: "web"`)
	assert.Contains(t, err.Error(), "clusterIP: None")

	var got appsv1.StatefulSet
	assert.True(t, apierrors.IsNotFound(c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, &got)))
}

func TestStatefulSetWithSelectorMismatchIsDenied(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	require.NoError(t, c.Create(ctx, harness.Service(ns, "web", corev1.ClusterIPNone, map[string]string{"app": "frontend"})))
	err := c.Create(ctx, harness.StatefulSet(ns, "web", "web", "nginx"))
	assert.Equal(t, []string{"spec.serviceName"}, harness.InvalidCauses(t, err, rules.HeadlessServiceSelectorMismatch))
	assert.Contains(t, err.Error(), "selects app=frontend, which does not match the pod template labels app=web")
}

func TestHeadlessPairingIsAdmittedCleanly(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	require.NoError(t, c.Create(ctx, harness.Service(ns, "web", corev1.ClusterIPNone, map[string]string{"app": "web"})))
	require.NoError(t, c.Create(ctx, harness.StatefulSet(ns, "web", "web", "nginx")))
	assert.Empty(t, w.Take())
}

// An UPDATE must not be blocked by a problem the stored object already has:
// scaling down a StatefulSet whose Service became non-headless still works.
func TestExistingProblemDoesNotBlockUpdate(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	sts := harness.StatefulSet(ns, "web", "web", "nginx")
	require.NoError(t, c.Create(ctx, sts)) // Service missing: warned, admitted
	// A ClusterIP Service under the StatefulSet's serviceName: only an
	// exemption lets it in now (as if it predated stsguard).
	svc := harness.Service(ns, "web", "", map[string]string{"app": "web"})
	svc.Annotations = map[string]string{
		engine.ExemptAnnotation:       rules.HeadlessServiceDefault + "," + rules.HeadlessServiceNotHeadless,
		engine.ExemptReasonAnnotation: "test: a Service that predates stsguard",
	}
	require.NoError(t, c.Create(ctx, svc))
	require.NotEqual(t, corev1.ClusterIPNone, svc.Spec.ClusterIP)
	waitForCachedService(t, c, ns, "web")
	w.Take()

	sts.Spec.Replicas = ptr.To[int32](1)
	require.NoError(t, c.Update(ctx, sts))
	got := strings.Join(w.Take(), "\n")
	assert.Contains(t, got, "[rule: headless-service-not-headless]")
	assert.Contains(t, got, "has this problem already")

	// A new StatefulSet with the same pairing is still denied.
	err := c.Create(ctx, harness.StatefulSet(ns, "web2", "web", "nginx"))
	harness.InvalidCauses(t, err, rules.HeadlessServiceNotHeadless)
}

// waitForCachedService waits until stsguard's cache has the Service, seen as
// a dry-run StatefulSet creation no longer warning that it is missing.
func waitForCachedService(t *testing.T, c client.Client, ns, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		cl, w := newClient(t)
		probe := harness.StatefulSet(ns, "probe-"+name, name, "nginx")
		_ = cl.Create(ctx, probe, client.DryRunAll)
		for _, msg := range w.Take() {
			if strings.Contains(msg, rules.HeadlessServiceMissing) {
				return false, nil
			}
		}
		return true, nil
	})
	require.NoError(t, err, "stsguard's cache never saw Service %s/%s", ns, name)
}

func loadExample(t *testing.T, dir, ns string) (objs []client.Object) {
	t.Helper()
	objs, err := harness.DecodeFile(filepath.Join(harness.Root(), "examples", dir, "mysql.yaml"))
	require.NoError(t, err)
	for _, o := range objs {
		o.SetNamespace(ns)
	}
	return objs
}

// strongPassword replaces the seed's literal "password" (denied by
// weak-password) with a value that password-secret-ref moves.
const strongPassword = "n0t-the-seed-pw-7"

// mysqlWithStrongPassword is the seed MySQL example with strongPassword.
func mysqlWithStrongPassword(t *testing.T, ns string) []client.Object {
	objs := loadExample(t, "mysql-plaintext-password", ns)
	objs[1].(*appsv1.StatefulSet).Spec.Template.Spec.Containers[0].Env[0].Value = strongPassword
	return objs
}

// The seed documents' MySQL manifest: MYSQL_ROOT_PASSWORD: "password".
func TestSeedPlaintextPasswordIsDenied(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	objs := loadExample(t, "mysql-plaintext-password", ns)
	require.NoError(t, c.Create(ctx, objs[0]))
	err := c.Create(ctx, objs[1])
	assert.Equal(t, []string{"spec.template.spec.containers[0].env[0].value"}, harness.InvalidCauses(t, err, rules.WeakPassword))
	assert.Contains(t, err.Error(), "the password in MYSQL_ROOT_PASSWORD is a well-known default password")
	assertNoLeak(t, err.Error(), "password")
	var secret corev1.Secret
	assert.True(t, apierrors.IsNotFound(c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "mysql-credentials"}, &secret)),
		"nothing is written for a denied request")
}

func TestPlaintextPasswordMovesIntoSecret(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	for _, o := range mysqlWithStrongPassword(t, ns) {
		require.NoError(t, c.Create(ctx, o))
	}
	var sts appsv1.StatefulSet
	require.NoError(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "mysql"}, &sts))
	env := sts.Spec.Template.Spec.Containers[0].Env
	require.Len(t, env, 1)
	assert.Equal(t, "MYSQL_ROOT_PASSWORD", env[0].Name)
	assert.Empty(t, env[0].Value)
	require.NotNil(t, env[0].ValueFrom)
	require.NotNil(t, env[0].ValueFrom.SecretKeyRef)
	assert.Equal(t, "mysql-credentials", env[0].ValueFrom.SecretKeyRef.Name)
	assert.Equal(t, "mysql-root-password", env[0].ValueFrom.SecretKeyRef.Key)
	assert.Equal(t, int64(120), *sts.Spec.Template.Spec.TerminationGracePeriodSeconds)

	var secret corev1.Secret
	require.NoError(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "mysql-credentials"}, &secret))
	assert.Equal(t, strongPassword, string(secret.Data["mysql-root-password"]))
	assert.Equal(t, "stsguard", secret.Labels["app.kubernetes.io/managed-by"])

	got := strings.Join(w.Take(), "\n")
	assert.Contains(t, got, "[rule: password-secret-ref]")
	assertNoLeak(t, got, strongPassword)
	assertNoLeak(t, logs.String(), strongPassword)

	// Applying the same manifest again (an UPDATE with the literal back in
	// the template) reuses the Secret that holds the same value.
	sts.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MYSQL_ROOT_PASSWORD", Value: strongPassword}}
	require.NoError(t, c.Update(ctx, &sts))
	require.NoError(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "mysql"}, &sts))
	assert.NotNil(t, sts.Spec.Template.Spec.Containers[0].Env[0].ValueFrom)
}

// assertNoLeak fails when the literal password appears in text as a value
// (the word also appears in env names and messages, so look for it quoted
// or as a base64 value).
func assertNoLeak(t *testing.T, text, value string) {
	t.Helper()
	for _, form := range []string{`"` + value + `"`, `=` + value, `: ` + value + "\n", base64.StdEncoding.EncodeToString([]byte(value))} {
		assert.NotContains(t, text, form, "secret value leaked")
	}
}

func TestPlaintextPasswordDryRunCreatesNothing(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	objs := mysqlWithStrongPassword(t, ns)
	require.NoError(t, c.Create(ctx, objs[0])) // the Service, for real
	sts := objs[1].(*appsv1.StatefulSet)
	require.NoError(t, c.Create(ctx, sts, client.DryRunAll))

	// The dry-run answer carries the same patch a real request gets...
	ref := sts.Spec.Template.Spec.Containers[0].Env[0].ValueFrom
	require.NotNil(t, ref)
	assert.Equal(t, "mysql-credentials", ref.SecretKeyRef.Name)
	assert.Equal(t, "mysql-root-password", ref.SecretKeyRef.Key)
	// ...and leaves nothing behind.
	var secret corev1.Secret
	assert.True(t, apierrors.IsNotFound(c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "mysql-credentials"}, &secret)))
	var got appsv1.StatefulSet
	assert.True(t, apierrors.IsNotFound(c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "mysql"}, &got)))
}

func TestPlaintextPasswordConflictingSecretIsDenied(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	existing := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mysql-credentials"},
		Data:       map[string][]byte{"mysql-root-password": []byte("another-value")},
	}
	require.NoError(t, c.Create(ctx, existing))
	objs := mysqlWithStrongPassword(t, ns)
	require.NoError(t, c.Create(ctx, objs[0]))

	err := c.Create(ctx, objs[1])
	fields := harness.InvalidCauses(t, err, rules.PasswordSecretRef)
	assert.Equal(t, []string{"spec.template.spec.containers[0].env[0]"}, fields)
	assert.Contains(t, err.Error(), `already holds a different value under key "mysql-root-password"`)
	assertNoLeak(t, err.Error(), strongPassword)
	assert.NotContains(t, err.Error(), "another-value")

	var secret corev1.Secret
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(existing), &secret))
	assert.Equal(t, "another-value", string(secret.Data["mysql-root-password"]), "the Secret must never be overwritten")
}

func TestPostgresWithoutPasswordGetsGeneratedOne(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	sts := harness.StatefulSet(ns, "postgres", "", "postgres:14")
	require.NoError(t, c.Create(ctx, sts))
	env := sts.Spec.Template.Spec.Containers[0].Env
	require.Len(t, env, 1)
	assert.Equal(t, "POSTGRES_PASSWORD", env[0].Name)
	assert.Equal(t, "postgres-password", env[0].ValueFrom.SecretKeyRef.Key)
	var secret corev1.Secret
	require.NoError(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "postgres-credentials"}, &secret))
	pw := string(secret.Data["postgres-password"])
	assert.Len(t, pw, credentials.GeneratedPasswordLength)
	assert.NotContains(t, logs.String(), pw)
}

func TestCassandraGetsGracePeriod300(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	require.NoError(t, c.Create(ctx, harness.Service(ns, "cassandra", corev1.ClusterIPNone, map[string]string{"app": "cassandra"})))
	sts := harness.StatefulSet(ns, "cassandra", "cassandra", "cassandra:4.0")
	require.NoError(t, c.Create(ctx, sts))
	assert.Equal(t, int64(300), *sts.Spec.Template.Spec.TerminationGracePeriodSeconds)

	// A value set on purpose is kept.
	kept := harness.StatefulSet(ns, "cassandra-fast", "cassandra", "cassandra:4.0")
	kept.Spec.Selector.MatchLabels = map[string]string{"app": "cassandra"}
	kept.Spec.Template.Labels = map[string]string{"app": "cassandra"}
	kept.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](45)
	require.NoError(t, c.Create(ctx, kept))
	assert.Equal(t, int64(45), *kept.Spec.Template.Spec.TerminationGracePeriodSeconds)
}

func TestCanaryAnnotationStagesRollout(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	require.NoError(t, c.Create(ctx, harness.Service(ns, "web", corev1.ClusterIPNone, map[string]string{"app": "web"})))
	sts := harness.StatefulSet(ns, "web", "web", "nginx:1.26")
	sts.Annotations = map[string]string{rules.CanaryAnnotation: "1"}
	require.NoError(t, c.Create(ctx, sts))
	assert.Equal(t, int32(0), *sts.Spec.UpdateStrategy.RollingUpdate.Partition, "a CREATE is not a rollout")

	// An UPDATE that changes only the replica count is not staged.
	sts.Spec.Replicas = ptr.To[int32](4)
	require.NoError(t, c.Update(ctx, sts))
	assert.Equal(t, int32(0), *sts.Spec.UpdateStrategy.RollingUpdate.Partition)

	// An image change is: only the highest ordinal takes it first.
	w.Take()
	sts.Spec.Template.Spec.Containers[0].Image = "nginx:1.27"
	require.NoError(t, c.Update(ctx, sts))
	assert.Equal(t, int32(3), *sts.Spec.UpdateStrategy.RollingUpdate.Partition)
	assert.Contains(t, strings.Join(w.Take(), "\n"), "[rule: rollout-partition]")

	// An UPDATE that sets the partition itself is left alone (promotion).
	sts.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To[int32](0)
	sts.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
	require.NoError(t, c.Update(ctx, sts))
	assert.Equal(t, int32(0), *sts.Spec.UpdateStrategy.RollingUpdate.Partition)
}
