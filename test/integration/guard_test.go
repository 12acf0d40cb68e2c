package integration

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/test/harness"
)

// denied asserts that err is a 422 Invalid status for kind naming rule, with
// one cause per field in fields.
func denied(t *testing.T, err error, kind, rule string, fields ...string) {
	t.Helper()
	require.Error(t, err)
	require.True(t, apierrors.IsInvalid(err), "want a 422 Invalid status, got %v", err)
	assert.Contains(t, err.Error(), "[rule: "+rule+"]")
	st := err.(apierrors.APIStatus).Status()
	require.NotNil(t, st.Details)
	assert.Equal(t, kind, st.Details.Kind)
	var got []string
	for _, c := range st.Details.Causes {
		got = append(got, c.Field)
	}
	assert.Equal(t, fields, got)
}

// pairedStatefulSet creates StatefulSet web (pods app=web) and waits until
// stsguard's cache has it, seen as a dry-run Service create being made
// headless. The Service web does not exist yet.
func pairedStatefulSet(t *testing.T, c client.Client, ns string) *appsv1.StatefulSet {
	t.Helper()
	sts := harness.StatefulSet(ns, "web", "web", "nginx")
	require.NoError(t, c.Create(context.Background(), sts))
	harness.Eventually(t, "stsguard to see the StatefulSet", func() bool {
		probe := harness.Service(ns, "web", "", map[string]string{"app": "web"})
		return c.Create(context.Background(), probe, client.DryRunAll) == nil && probe.Spec.ClusterIP == corev1.ClusterIPNone
	})
	return sts
}

func TestServiceCreatedForStatefulSetIsMadeHeadless(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	pairedStatefulSet(t, c, ns)
	w.Take()
	svc := harness.Service(ns, "web", "", map[string]string{"app": "web"})
	require.NoError(t, c.Create(context.Background(), svc))
	assert.Equal(t, corev1.ClusterIPNone, svc.Spec.ClusterIP)
	assert.Contains(t, joined(w.Take()), `spec.clusterIP: changed by stsguard: set to "None" (headless) because StatefulSet "web" names this Service`)
}

func TestNonHeadlessServiceForStatefulSetIsDenied(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	pairedStatefulSet(t, c, ns)
	svc := harness.Service(ns, "web", "", map[string]string{"app": "web"})
	svc.Spec.Type = corev1.ServiceTypeNodePort
	err := c.Create(context.Background(), svc)
	denied(t, err, "Service", rules.HeadlessServiceNotHeadless, "spec.type")
	assert.Contains(t, err.Error(), `StatefulSet "web" names Service "web" as its spec.serviceName`)

	// With the mutation off, a Service without clusterIP gets one allocated,
	// and the validating webhook denies it.
	srv.SetPolicy(t, "mutations:\n  headless-service-default: Off\n")
	err = c.Create(context.Background(), harness.Service(ns, "web", "", map[string]string{"app": "web"}))
	denied(t, err, "Service", rules.HeadlessServiceNotHeadless, "spec.clusterIP")
}

// headlessPair creates the headless Service web and its StatefulSet and
// waits until stsguard's cache has the StatefulSet, seen as a dry-run
// selector change being denied.
func headlessPair(t *testing.T, c client.Client, ns string) (*corev1.Service, *appsv1.StatefulSet) {
	t.Helper()
	ctx := context.Background()
	svc := harness.Service(ns, "web", corev1.ClusterIPNone, map[string]string{"app": "web"})
	require.NoError(t, c.Create(ctx, svc))
	sts := harness.StatefulSet(ns, "web", "web", "nginx")
	require.NoError(t, c.Create(ctx, sts))
	harness.Eventually(t, "stsguard to see the StatefulSet", func() bool {
		probe := svc.DeepCopy()
		probe.Spec.Selector = map[string]string{"app": "other"}
		return apierrors.IsInvalid(c.Update(ctx, probe, client.DryRunAll))
	})
	return svc, sts
}

func TestServiceSelectorChangeIsDenied(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	svc, _ := headlessPair(t, c, ns)

	changed := svc.DeepCopy()
	changed.Spec.Selector = map[string]string{"app": "frontend"}
	err := c.Update(ctx, changed)
	denied(t, err, "Service", rules.HeadlessServiceSelectorChange, "spec.selector")
	assert.Contains(t, err.Error(), `no longer selects the pods of StatefulSet "web" (pod template labels app=web)`)

	// A selector that still selects the pods is fine.
	narrowed := svc.DeepCopy()
	narrowed.Spec.Selector = map[string]string{"app": "web"}
	narrowed.Labels = map[string]string{"team": "db"}
	require.NoError(t, c.Update(ctx, narrowed))
}

func TestGoverningServiceDeleteWarnsOrIsDenied(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	svc, _ := headlessPair(t, c, ns)

	// Deny is a policy choice: the Service stays.
	srv.SetPolicy(t, "rules:\n  headless-service-delete: Deny\n")
	err := c.Delete(ctx, svc)
	denied(t, err, "Service", rules.HeadlessServiceDelete, "metadata.name")
	require.NoError(t, c.Get(ctx, client.ObjectKeyFromObject(svc), &corev1.Service{}))

	// Warn, the default: deleted, with a warning.
	srv.ResetPolicy(t)
	w.Take()
	require.NoError(t, c.Delete(ctx, svc))
	got := joined(w.Take())
	assert.Contains(t, got, `metadata.name: Forbidden: Service "web" is the governing Service of StatefulSet "web"`)
	assert.Contains(t, got, "[rule: headless-service-delete]")
}

// secretPair creates Secret db (keys root-password, other) and a MySQL
// StatefulSet that reads root-password, and waits until stsguard's cache
// has the StatefulSet, seen as a dry-run delete of the Secret warning.
func secretPair(t *testing.T, c client.Client, ns string) *corev1.Secret {
	t.Helper()
	ctx := context.Background()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Data: map[string][]byte{"root-password": []byte(strongPassword), "other": []byte("x")}}
	require.NoError(t, c.Create(ctx, sec))
	sts := harness.StatefulSet(ns, "mysql", "", "mysql:8.4")
	sts.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MYSQL_ROOT_PASSWORD", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "root-password"}}}}
	require.NoError(t, c.Create(ctx, sts))
	cw, w := newClient(t)
	harness.Eventually(t, "stsguard to see the StatefulSet", func() bool {
		_ = cw.Delete(ctx, sec.DeepCopy(), client.DryRunAll)
		return len(w.Take()) > 0
	})
	return sec
}

func TestSecretKeyRemovedIsDenied(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	sec := secretPair(t, c, ns)

	dropped := sec.DeepCopy()
	delete(dropped.Data, "root-password")
	err := c.Update(ctx, dropped)
	denied(t, err, "Secret", rules.SecretKeyRemoved, "data[root-password]")
	assert.Contains(t, err.Error(), `key "root-password" is used by StatefulSet "mysql" (spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef)`)
	assertNoLeak(t, err.Error(), strongPassword)

	// Removing a key nobody reads is fine.
	unused := sec.DeepCopy()
	delete(unused.Data, "other")
	require.NoError(t, c.Update(ctx, unused))
}

func TestSecretInUseDeleteWarns(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	sec := secretPair(t, c, ns)
	w.Take()
	require.NoError(t, c.Delete(context.Background(), sec))
	got := joined(w.Take())
	assert.Contains(t, got, `metadata.name: Forbidden: Secret "db" is used by StatefulSet "mysql"`)
	assert.Contains(t, got, "[rule: secret-in-use-delete]")
	assertNoLeak(t, got, strongPassword)
	assertNoLeak(t, logs.String(), strongPassword)
}

func TestWeakPasswordSecretIsDenied(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, Data: map[string][]byte{"password": []byte("changeme")}}
	err := c.Create(ctx, sec)
	denied(t, err, "Secret", rules.WeakPassword, "data[password]")
	assert.Contains(t, err.Error(), "is a well-known default password")
	assert.NotContains(t, err.Error(), "changeme")

	// stringData is merged into data before admission: judged the same.
	withStringData := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, StringData: map[string]string{"db-password": ""}}
	denied(t, c.Create(ctx, withStringData), "Secret", rules.WeakPassword, "data[db-password]")

	strong := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, StringData: map[string]string{"password": strongPassword}}
	require.NoError(t, c.Create(ctx, strong))
	assert.NotContains(t, logs.String(), "changeme")
}

func TestStatefulSetReferencesAndStorageWarn(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	fixed := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fixed-" + rand.String(5)}, Provisioner: "example.com/csi"}
	require.NoError(t, c.Create(ctx, fixed))
	t.Cleanup(func() { _ = c.Delete(ctx, fixed) })

	sts := harness.StatefulSet(ns, "db", "", "postgres:16")
	sts.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "POSTGRES_PASSWORD", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}, Key: "password"}}}}
	sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{
		{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To(fixed.Name),
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}},
	}
	harness.Eventually(t, "stsguard to see the StorageClass", func() bool {
		_ = c.Create(ctx, sts.DeepCopy(), client.DryRunAll)
		return !strings.Contains(joined(w.Take()), "[rule: storage-class-not-found]")
	})
	require.NoError(t, c.Create(ctx, sts))
	got := joined(w.Take())
	for _, want := range []string{
		`spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef: Not found: "missing"`,
		"[rule: secret-ref-missing]",
		`spec.volumeClaimTemplates[0].spec.storageClassName: Invalid value: "` + fixed.Name + `": StorageClass "` + fixed.Name + `" does not set allowVolumeExpansion: true`,
		"[rule: storage-class-not-expandable]",
		`spec.volumeClaimTemplates[0].metadata.name: Invalid value: "data": no container mounts it`,
		"[rule: volume-claim-template-unmounted]",
	} {
		assert.Contains(t, got, want)
	}
}

// The StatefulSet warnings not covered above, all on one CREATE, as the
// client sees them.
func TestStatefulSetRiskWarnings(t *testing.T) {
	c, w := newClient(t)
	ns := harness.Namespace(t, c)
	sts := harness.StatefulSet(ns, "cassandra", "", "cassandra:4.1")
	sts.Spec.Replicas = ptr.To[int32](3)
	sts.Spec.Template.Spec.Containers[0].ReadinessProbe = nil
	sts.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](60)
	sts.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](5)}}
	sts.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.RetainPersistentVolumeClaimRetentionPolicyType}
	sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("no-such-class"),
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}}
	sts.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/cassandra"}}
	require.NoError(t, c.Create(context.Background(), sts))
	got := joined(w.Take())
	for _, want := range []string{
		"spec.serviceName: Required value: without a governing Service the pods get no stable DNS names", "[rule: service-name-empty]",
		`spec.volumeClaimTemplates[0].spec.storageClassName: Not found: "no-such-class"`, "[rule: storage-class-not-found]",
		`spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Invalid value: "Delete": on a cassandra StatefulSet`, "[rule: pvc-retention-delete]",
		"spec.updateStrategy.rollingUpdate.partition: Invalid value: 5: is greater than spec.replicas (3)", "[rule: partition-exceeds-replicas]",
		`spec.template.spec.containers[0].readinessProbe: Required value: container "cassandra" has no readinessProbe`, "[rule: readiness-probe-missing]",
		"spec.template.spec.terminationGracePeriodSeconds: Invalid value: 60: is below the 300s a cassandra pod needs", "[rule: termination-grace-period-short]",
	} {
		assert.Contains(t, got, want)
	}
}
