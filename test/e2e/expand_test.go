package e2e

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/expand"
	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/test/harness"
)

// runExpand grows template data of statefulset/db to size, with a client
// of its own.
func runExpand(ctx context.Context, t *testing.T, ns, size string, dryRun bool) (string, error) {
	c, w := newClient(t)
	return runExpandWith(ctx, c, w, ns, size, dryRun)
}

// runExpandWith is runExpand with the client c, whose warnings w records.
func runExpandWith(ctx context.Context, c client.Client, w *harness.Warnings, ns, size string, dryRun bool) (string, error) {
	var out bytes.Buffer
	err := runExpandTo(ctx, c, w, ns, size, dryRun, &out)
	return out.String(), err
}

// runExpandTo is runExpandWith printing into out.
func runExpandTo(ctx context.Context, c client.Client, w *harness.Warnings, ns, size string, dryRun bool, out io.Writer) error {
	return expand.Run(ctx, c, expand.Options{Namespace: ns, Name: "db", Template: "data", Size: resource.MustParse(size),
		DryRun: dryRun, Poll: 20 * time.Millisecond, Out: out, Warnings: w})
}

// syncBuffer is a bytes.Buffer that a test may read while expand writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is what must not change when a StatefulSet is re-created: its
// pods, its revision, and its ControllerRevisions.
type running struct {
	pods      map[string]types.UID
	revision  string
	revisions int
}

// snapshot waits until namespace ns's StatefulSet db is rolled out and
// returns what runs.
func snapshot(t *testing.T, c client.Client, ns string) running {
	t.Helper()
	sts := waitRolledOut(t, c, ns, "db")
	crs := &appsv1.ControllerRevisionList{}
	require.NoError(t, c.List(context.Background(), crs, client.InNamespace(ns)))
	return running{pods: podUIDs(t, c, ns), revision: sts.Status.CurrentRevision, revisions: len(crs.Items)}
}

// assertNoRestart asserts that the StatefulSet controller, once it has
// adopted the pods of the re-created db, runs the same pods on the same
// revision: no pod was deleted or replaced, and no rollout began.
func assertNoRestart(t *testing.T, c client.Client, ns string, before running) {
	t.Helper()
	after := snapshot(t, c, ns)
	assert.Equal(t, before.pods, after.pods, "the same pods (UIDs): none deleted or replaced")
	assert.Equal(t, before.revision, after.revision, "currentRevision == updateRevision == the revision before")
	assert.Equal(t, before.revisions, after.revisions, "no new ControllerRevision")
	assert.NotContains(t, getStatefulSet(t, c, ns, "db").Annotations, engine.RecreateAnnotation, "removed once the re-create is done")
	for name := range before.pods {
		pod := &corev1.Pod{}
		require.NoError(t, c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, pod))
		assert.Equal(t, corev1.PodRunning, pod.Status.Phase, name)
		assert.Nil(t, pod.DeletionTimestamp, name)
		if assert.NotNil(t, metav1.GetControllerOf(pod), name) {
			assert.Equal(t, getStatefulSet(t, c, ns, "db").UID, metav1.GetControllerOf(pod).UID, "%s adopted by the new StatefulSet", name)
		}
	}
}

func templateSize(sts *appsv1.StatefulSet) string {
	q := sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage]
	return q.String()
}

func TestExpandResizesEveryPVCAndRecreatesTheStatefulSet(t *testing.T) {
	c, w := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true, harness.ManualResizeProvisioner)
	r := startResizer(t, c, ns)
	r.fsPending["data-db-2"] = true // its file system grows when db-2 restarts
	old, pods := database(t, c, ns, class)
	before := snapshot(t, c, ns)
	w.Take()

	out, err := runExpandWith(context.Background(), c, w, ns, "2Gi", false)
	require.NoError(t, err, out)
	t.Log(out)

	assert.Equal(t, []string{"2Gi/2Gi", "2Gi/2Gi", "2Gi/1Gi"}, claimSizes(t, c, ns))
	sts := getStatefulSet(t, c, ns, "db")
	assert.NotEqual(t, old.UID, sts.UID, "re-created")
	assert.Equal(t, "2Gi", templateSize(sts))
	assert.Equal(t, old.Spec.Template.Spec.Containers[0].Image, sts.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, pods, podUIDs(t, c, ns), "no pod was replaced")
	assert.True(t, stateSecretGone(t, c, ns, "db"))
	assert.NotContains(t, strings.Join(w.Take(), "\n"), rules.PVCSmallerThanTemplate, "the re-create finds PVCs at the new size")
	assertNoRestart(t, c, ns, before)

	for _, want := range []string{
		`plan: template "data" 1Gi -> 2Gi; 3 PVC(s):`,
		`data-db-0 (1Gi, StorageClass "` + class + `", can expand): resize 1Gi -> 2Gi`,
		"data-db-1: requested 2Gi",
		"data-db-1: capacity 2Gi",
		"data-db-2: capacity 1Gi, volume resized; the file system grows when its pod restarts (FileSystemResizePending)",
		"statefulset/db: deleted with propagationPolicy Orphan (its pods and PVCs stay)",
		`statefulset/db: created with template "data" at 2Gi`,
		"pod db-0: untouched (uid " + string(pods["db-0"]) + ")",
		"pod db-2: untouched",
	} {
		assert.Contains(t, out, want)
	}

	// Idempotent: a second run finds everything done and changes nothing.
	out, err = runExpand(context.Background(), t, ns, "2Gi", false)
	require.NoError(t, err, out)
	assert.Contains(t, out, "data-db-0 (2Gi")
	assert.Contains(t, out, "no re-create needed")
	assert.Equal(t, sts.UID, getStatefulSet(t, c, ns, "db").UID)
}

func TestExpandRefusesAndChangesNothing(t *testing.T) {
	c, w := newClient(t)
	ns := namespace(t, c)
	fixed := storageClass(t, c, ns, false, harness.Provisioner)
	old, pods := database(t, c, ns, fixed)

	cases := []struct {
		name, size string
		want       []string
	}{
		{"StorageClass cannot expand", "2Gi", []string{
			`data-db-0: its StorageClass "` + fixed + `" does not set allowVolumeExpansion: true`,
			`data-db-2: its StorageClass "` + fixed + `"`}},
		{"shrink", "512Mi", []string{
			`volumeClaimTemplate "data" requests 1Gi, more than 512Mi: a PVC can never shrink`,
			"data-db-0: it requests 1Gi already, more than 512Mi"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runExpand(context.Background(), t, ns, tc.size, false)
			require.ErrorIs(t, err, expand.ErrRefused, out)
			for _, want := range tc.want {
				assert.Contains(t, err.Error(), want)
			}
			assert.Equal(t, []string{"1Gi/1Gi", "1Gi/1Gi", "1Gi/1Gi"}, claimSizes(t, c, ns))
			sts := getStatefulSet(t, c, ns, "db")
			assert.Equal(t, old.UID, sts.UID)
			assert.Equal(t, "1Gi", templateSize(sts))
			assert.Equal(t, pods, podUIDs(t, c, ns))
			assert.True(t, stateSecretGone(t, c, ns, "db"))
		})
	}
	t.Run("a Secret stsguard did not write in the way", func(t *testing.T) {
		foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: expand.StateSecretName("db")}, StringData: map[string]string{"x": "y"}}
		require.NoError(t, c.Create(context.Background(), foreign))
		defer func() { require.NoError(t, c.Delete(context.Background(), foreign)) }()
		err := expand.Run(context.Background(), c, expand.Options{Namespace: ns, Name: "db", Template: "data", Size: resource.MustParse("2Gi"), Warnings: w})
		require.ErrorIs(t, err, expand.ErrRefused)
		assert.Contains(t, err.Error(), "the Secret stsguard-expand-db exists but was not written by stsguard expand")
	})
	t.Run("unknown template", func(t *testing.T) {
		err := expand.Run(context.Background(), c, expand.Options{Namespace: ns, Name: "db", Template: "logs", Size: resource.MustParse("2Gi"), Warnings: w})
		require.ErrorIs(t, err, expand.ErrRefused)
		assert.Contains(t, err.Error(), `has no volumeClaimTemplate "logs"`)
	})
	t.Run("unknown StatefulSet", func(t *testing.T) {
		err := expand.Run(context.Background(), c, expand.Options{Namespace: ns, Name: "nope", Template: "data", Size: resource.MustParse("2Gi"), Warnings: w})
		require.ErrorIs(t, err, expand.ErrRefused)
		assert.Contains(t, err.Error(), "statefulset/nope not found in namespace "+ns)
	})
}

func TestExpandRefusesAPendingClaim(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true, "nobody.example.com") // no provisioner answers
	sts := withStorage(harness.StatefulSet(ns, "db", "", "nginx"), class, "1Gi")
	require.NoError(t, c.Create(context.Background(), sts))
	harness.Eventually(t, "the StatefulSet controller to create data-db-0", func() bool {
		return c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "data-db-0"}, &corev1.PersistentVolumeClaim{}) == nil
	})

	out, err := runExpand(context.Background(), t, ns, "2Gi", false)
	require.ErrorIs(t, err, expand.ErrRefused, out)
	assert.Contains(t, err.Error(), "data-db-0: it is Pending, not Bound, and only a bound claim can be resized")
	assert.Equal(t, sts.UID, getStatefulSet(t, c, ns, "db").UID)
}

func TestExpandDryRunChangesNothing(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true, harness.Provisioner)
	old, pods := database(t, c, ns, class)

	out, err := runExpand(context.Background(), t, ns, "2Gi", true)
	require.NoError(t, err, out)
	assert.Contains(t, out, "(dry run: nothing is changed)")
	assert.Contains(t, out, "data-db-2 (1Gi, StorageClass \""+class+"\", can expand): resize 1Gi -> 2Gi")
	assert.Contains(t, out, "dry run complete: every write was accepted by the apiserver")

	assert.Equal(t, []string{"1Gi/1Gi", "1Gi/1Gi", "1Gi/1Gi"}, claimSizes(t, c, ns))
	sts := getStatefulSet(t, c, ns, "db")
	assert.Equal(t, old.UID, sts.UID)
	assert.Nil(t, sts.DeletionTimestamp)
	assert.Equal(t, "1Gi", templateSize(sts))
	assert.Equal(t, pods, podUIDs(t, c, ns))
	assert.True(t, stateSecretGone(t, c, ns, "db"))
}

func TestExpandResumesAfterAnInterruption(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true, harness.ManualResizeProvisioner)
	r := startResizer(t, c, ns)
	old, pods := database(t, c, ns, class)
	before := snapshot(t, c, ns)

	// Run 1 stops while it waits for the volumes: no resizer runs.
	r.pause(true)
	ctx := waitUntil(t, func(ctx context.Context) bool {
		sizes, err := readClaimSizes(ctx, c, ns)
		return err == nil && sizes[0] == "2Gi/1Gi" && sizes[1] == "2Gi/1Gi" && sizes[2] == "2Gi/1Gi"
	})
	out, err := runExpand(ctx, t, ns, "2Gi", false)
	require.ErrorIs(t, err, context.Canceled, out)
	assert.Contains(t, err.Error(), "run the same command again to resume")
	assert.Equal(t, old.UID, getStatefulSet(t, c, ns, "db").UID)

	// Run 2 stops after the delete, while another finalizer holds the
	// StatefulSet (the garbage collector has done its part).
	const hold = "stsguard.test/hold"
	live := getStatefulSet(t, c, ns, "db")
	require.NoError(t, c.Patch(context.Background(), live, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":["`+hold+`"]}}`))))
	ctx = waitUntil(t, func(ctx context.Context) bool {
		sts := &appsv1.StatefulSet{}
		return c.Get(ctx, client.ObjectKeyFromObject(old), sts) == nil && sts.DeletionTimestamp != nil
	})
	// The volumes grow once run 2 has printed its plan: a resizer let go
	// before could grow them first, and the plan would say "at 2Gi already".
	run2 := &syncBuffer{}
	go func() {
		_ = wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
			return strings.Contains(run2.String(), "plan: "), nil
		})
		r.pause(false)
	}()
	c2, w2 := newClient(t)
	err = runExpandTo(ctx, c2, w2, ns, "2Gi", false, run2)
	out = run2.String()
	require.ErrorIs(t, err, context.Canceled, out)
	assert.Contains(t, out, "can expand): requested 2Gi; waiting for the volume to grow", "run 1 requested it already")
	assert.False(t, stateSecretGone(t, c, ns, "db"), "the StatefulSet to create is saved")

	// The finalizer goes; the StatefulSet is gone, its pods orphaned by the
	// garbage collector and still running.
	harness.Eventually(t, "the garbage collector to orphan the pods", func() bool {
		pods := &corev1.PodList{}
		require.NoError(t, c.List(context.Background(), pods, client.InNamespace(ns)))
		for _, p := range pods.Items {
			if metav1.GetControllerOf(&p) != nil {
				return false
			}
		}
		return len(pods.Items) == 3
	})
	require.NoError(t, c.Patch(context.Background(), live, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))))
	harness.Eventually(t, "the orphaning delete", func() bool {
		return c.Get(context.Background(), client.ObjectKeyFromObject(old), &appsv1.StatefulSet{}) != nil
	})

	// A run with another size refuses rather than mix two plans.
	out, err = runExpand(context.Background(), t, ns, "3Gi", false)
	require.ErrorIs(t, err, expand.ErrRefused, out)
	assert.Contains(t, err.Error(), "an earlier run was re-creating statefulset/db -n "+ns+" with 2Gi; run it again with --size 2Gi")

	// Run 3 finds no StatefulSet, only the saved one, and finishes.
	out, err = runExpand(context.Background(), t, ns, "2Gi", false)
	require.NoError(t, err, out)
	assert.Contains(t, out, "resuming: the StatefulSet is being re-created")
	sts := getStatefulSet(t, c, ns, "db")
	assert.NotEqual(t, old.UID, sts.UID)
	assert.Equal(t, "2Gi", templateSize(sts))
	assert.Equal(t, []string{"2Gi/2Gi", "2Gi/2Gi", "2Gi/2Gi"}, claimSizes(t, c, ns))
	assert.Equal(t, pods, podUIDs(t, c, ns))
	assert.True(t, stateSecretGone(t, c, ns, "db"))
	assertNoRestart(t, c, ns, before)
}

// A StatefulSet admitted under an older, looser policy may not pass
// admission again: expand finds out with its dry-run create and refuses
// before it deletes anything.
func TestExpandRefusesARecreateThatAdmissionWouldDeny(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true, harness.Provisioner)
	ctx := context.Background()
	require.NoError(t, c.Create(ctx, harness.Service(ns, "db", "", map[string]string{"app": "db"}))) // ClusterIP, not headless
	srv.SetPolicy(t, "rules:\n  headless-service-not-headless: Warn\n")
	sts := withStorage(harness.StatefulSet(ns, "db", "db", "nginx"), class, "1Gi")
	require.NoError(t, c.Create(ctx, sts))
	waitRolledOut(t, c, ns, "db")
	srv.ResetPolicy(t)

	out, err := runExpand(ctx, t, ns, "2Gi", false)
	require.ErrorIs(t, err, expand.ErrRefused, out)
	assert.Contains(t, err.Error(), "the apiserver would not accept the re-created StatefulSet, so it is left as it is")
	assert.Contains(t, err.Error(), "[rule: headless-service-not-headless]")
	assert.Equal(t, []string{"1Gi/1Gi", "1Gi/1Gi", "1Gi/1Gi"}, claimSizes(t, c, ns))
	assert.Equal(t, sts.UID, getStatefulSet(t, c, ns, "db").UID)
	assert.True(t, stateSecretGone(t, c, ns, "db"))
}

// A StatefulSet that kept the API's default grace period of 30 s (admitted
// before stsguard was installed, or while termination-grace-period was off)
// is re-created with exactly its pod template: the default that stsguard
// gives new database StatefulSets steps aside, and the real StatefulSet
// controller re-adopts the three pods without a rollout.
func TestExpandKeepsAPodTemplateStsguardWouldHaveDefaulted(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true, harness.Provisioner)
	srv.SetPolicy(t, "mutations:\n  termination-grace-period: Off\n")
	sts := withStorage(harness.StatefulSet(ns, "db", "", "postgres:16"), class, "1Gi")
	sts.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "POSTGRES_PASSWORD", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "pg"}, Key: "password"}}}}
	require.NoError(t, c.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pg"},
		StringData: map[string]string{"password": "n0t-a-default-9"}}))
	require.NoError(t, c.Create(context.Background(), sts))
	require.Equal(t, int64(30), *getStatefulSet(t, c, ns, "db").Spec.Template.Spec.TerminationGracePeriodSeconds)
	srv.ResetPolicy(t)
	_, pods := database(t, c, ns, "") // already created: waits for it
	before := snapshot(t, c, ns)

	out, err := runExpand(context.Background(), t, ns, "2Gi", false)
	require.NoError(t, err, out)
	after := getStatefulSet(t, c, ns, "db")
	assert.Equal(t, int64(30), *after.Spec.Template.Spec.TerminationGracePeriodSeconds, "the stored template, not stsguard's default")
	assert.Equal(t, "2Gi", templateSize(after))
	assert.Equal(t, pods, podUIDs(t, c, ns))
	assertNoRestart(t, c, ns, before)
}

// When admission would change the re-created StatefulSet all the same (here
// a literal password, which password-secret-ref moves on any CREATE),
// expand refuses before it changes anything, and names the rule and field.
func TestExpandRefusesARecreateThatAdmissionWouldChange(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true, harness.Provisioner)
	srv.SetPolicy(t, "mutations:\n  password-secret-ref: Off\n")
	sts := withStorage(harness.StatefulSet(ns, "db", "", "mysql:8.0"), class, "1Gi")
	sts.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MYSQL_ROOT_PASSWORD", Value: "n0t-a-default-9"}}
	require.NoError(t, c.Create(context.Background(), sts))
	srv.ResetPolicy(t)
	old, pods := database(t, c, ns, "")

	out, err := runExpand(context.Background(), t, ns, "2Gi", false)
	require.ErrorIs(t, err, expand.ErrRefused, out)
	assert.Contains(t, err.Error(), "admission would change the re-created StatefulSet, and the StatefulSet controller would then replace every pod")
	assert.Contains(t, err.Error(), "spec.template.spec.containers[0].env[0]: changed by stsguard: moved the literal value of MYSQL_ROOT_PASSWORD")
	assert.Contains(t, err.Error(), "[rule: password-secret-ref]")
	assert.NotContains(t, err.Error(), "n0t-a-default-9")
	assert.Equal(t, []string{"1Gi/1Gi", "1Gi/1Gi", "1Gi/1Gi"}, claimSizes(t, c, ns))
	assert.Equal(t, old.UID, getStatefulSet(t, c, ns, "db").UID)
	assert.Equal(t, pods, podUIDs(t, c, ns))
	err = c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: rules.CredentialsSecretName("db")}, &corev1.Secret{})
	assert.True(t, apierrors.IsNotFound(err), "the dry run wrote no Secret: %v", err)
}

// PVC retention policies with the real controller and garbage collector:
// a StatefulSet whose PVCs are deleted with it (whenDeleted: Delete) or on
// scale-down (whenScaled: Delete) owns its PVCs; expand's orphaning delete
// must leave every one of them, with its data, to the re-created
// StatefulSet.
func TestExpandKeepsEveryPVCUnderARetentionPolicyOfDelete(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true, harness.Provisioner)
	sts := withStorage(harness.StatefulSet(ns, "db", "", "nginx"), class, "1Gi")
	sts.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
		WhenScaled:  appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
	}
	require.NoError(t, c.Create(context.Background(), sts))
	_, pods := database(t, c, ns, "")
	claims := claimUIDs(t, c, ns)
	harness.Eventually(t, "the StatefulSet controller to own its PVCs", func() bool {
		for _, pvc := range claimList(t, c, ns) {
			if metav1.GetControllerOf(&pvc) == nil {
				return false
			}
		}
		return true
	}, 30*time.Second)
	before := snapshot(t, c, ns)

	out, err := runExpand(context.Background(), t, ns, "2Gi", false)
	require.NoError(t, err, out)
	// The PVCs are the new StatefulSet's: the garbage collector can no
	// longer delete them for the old one.
	newUID := getStatefulSet(t, c, ns, "db").UID
	harness.Eventually(t, "the new StatefulSet to own its PVCs", func() bool {
		for _, pvc := range claimList(t, c, ns) {
			if ref := metav1.GetControllerOf(&pvc); ref == nil || ref.UID != newUID {
				return false
			}
		}
		return true
	}, 30*time.Second)
	assert.Equal(t, []string{"2Gi/2Gi", "2Gi/2Gi", "2Gi/2Gi"}, claimSizes(t, c, ns))
	assert.Equal(t, claims, claimUIDs(t, c, ns), "the same PVCs: none deleted")
	assert.Equal(t, pods, podUIDs(t, c, ns))
	assertNoRestart(t, c, ns, before)
	after := getStatefulSet(t, c, ns, "db")
	assert.Equal(t, sts.Spec.PersistentVolumeClaimRetentionPolicy, after.Spec.PersistentVolumeClaimRetentionPolicy)
	for _, pvc := range claimList(t, c, ns) {
		assert.Nil(t, pvc.DeletionTimestamp, pvc.Name)
	}
}

func claimList(t *testing.T, c client.Client, ns string) []corev1.PersistentVolumeClaim {
	t.Helper()
	list := &corev1.PersistentVolumeClaimList{}
	require.NoError(t, c.List(context.Background(), list, client.InNamespace(ns)))
	return list.Items
}

func claimUIDs(t *testing.T, c client.Client, ns string) map[string]types.UID {
	t.Helper()
	out := map[string]types.UID{}
	for _, pvc := range claimList(t, c, ns) {
		out[pvc.Name] = pvc.UID
	}
	return out
}
