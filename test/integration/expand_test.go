package integration

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/expand"
	"github.com/stsguard/stsguard/webhook/rules"
)

// runExpand grows template data of statefulset/db to size.
func runExpand(ctx context.Context, c client.Client, ns, size string, dryRun bool) (string, error) {
	var out bytes.Buffer
	err := expand.Run(ctx, c, expand.Options{Namespace: ns, Name: "db", Template: "data", Size: resource.MustParse(size),
		DryRun: dryRun, Poll: 20 * time.Millisecond, Out: &out})
	return out.String(), err
}

func templateSize(sts *appsv1.StatefulSet) string {
	q := sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage]
	return q.String()
}

func TestExpandResizesEveryPVCAndRecreatesTheStatefulSet(t *testing.T) {
	c, w := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true)
	k := startControllers(t, c, ns)
	k.fsPending["data-db-2"] = true // its file system grows when web-2 restarts
	old, pods := database(t, c, ns, class)
	w.Take()

	out, err := runExpand(context.Background(), c, ns, "2Gi", false)
	require.NoError(t, err, out)
	t.Log(out)

	assert.Equal(t, []string{"2Gi/2Gi", "2Gi/2Gi", "2Gi/1Gi"}, claimSizes(t, c, ns))
	sts := getStatefulSet(t, c, ns, "db")
	assert.NotEqual(t, old.UID, sts.UID, "re-created")
	assert.Equal(t, "2Gi", templateSize(sts))
	assert.Equal(t, old.Spec.Template.Spec.Containers[0].Image, sts.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, pods, podUIDs(t, c, ns), "no pod was replaced")
	assert.True(t, stateSecretGone(t, c, ns, "db"))
	assert.NotContains(t, joined(w.Take()), rules.PVCSmallerThanTemplate, "the re-create finds PVCs at the new size")

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
	out, err = runExpand(context.Background(), c, ns, "2Gi", false)
	require.NoError(t, err, out)
	assert.Contains(t, out, "data-db-0 (2Gi")
	assert.Contains(t, out, "no re-create needed")
	assert.Equal(t, sts.UID, getStatefulSet(t, c, ns, "db").UID)
}

func TestExpandRefusesAndChangesNothing(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	fixed := storageClass(t, c, ns, false)
	startControllers(t, c, ns)
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
			out, err := runExpand(context.Background(), c, ns, tc.size, false)
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
		err := expand.Run(context.Background(), c, expand.Options{Namespace: ns, Name: "db", Template: "data", Size: resource.MustParse("2Gi")})
		require.ErrorIs(t, err, expand.ErrRefused)
		assert.Contains(t, err.Error(), "the Secret stsguard-expand-db exists but was not written by stsguard expand")
	})
	t.Run("unknown template", func(t *testing.T) {
		err := expand.Run(context.Background(), c, expand.Options{Namespace: ns, Name: "db", Template: "logs", Size: resource.MustParse("2Gi")})
		require.ErrorIs(t, err, expand.ErrRefused)
		assert.Contains(t, err.Error(), `has no volumeClaimTemplate "logs"`)
	})
	t.Run("unknown StatefulSet", func(t *testing.T) {
		err := expand.Run(context.Background(), c, expand.Options{Namespace: ns, Name: "nope", Template: "data", Size: resource.MustParse("2Gi")})
		require.ErrorIs(t, err, expand.ErrRefused)
		assert.Contains(t, err.Error(), "statefulset/nope not found in namespace "+ns)
	})
}

func TestExpandRefusesAPendingClaim(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true)
	sts := withStorage(statefulSet(ns, "db", "", "nginx"), class, "1Gi")
	require.NoError(t, c.Create(context.Background(), sts))
	boundClaim(t, c, ns, "data-db-0", class, "1Gi")
	pending := &corev1.PersistentVolumeClaim{}
	require.NoError(t, c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "data-db-0"}, pending))
	pending.Status.Phase = corev1.ClaimPending
	require.NoError(t, c.Status().Update(context.Background(), pending))

	out, err := runExpand(context.Background(), c, ns, "2Gi", false)
	require.ErrorIs(t, err, expand.ErrRefused, out)
	assert.Contains(t, err.Error(), "data-db-0: it is Pending, not Bound, and only a bound claim can be resized")
	assert.Equal(t, sts.UID, getStatefulSet(t, c, ns, "db").UID)
}

func TestExpandDryRunChangesNothing(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true)
	startControllers(t, c, ns)
	old, pods := database(t, c, ns, class)

	out, err := runExpand(context.Background(), c, ns, "2Gi", true)
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
	class := storageClass(t, c, ns, true)
	k := startControllers(t, c, ns)
	old, pods := database(t, c, ns, class)

	// Run 1 stops while it waits for the volumes: no resizer runs.
	k.set(false, false)
	ctx := waitUntil(t, func(ctx context.Context) bool {
		sizes := claimSizes(t, c, ns)
		return sizes[0] == "2Gi/1Gi" && sizes[1] == "2Gi/1Gi" && sizes[2] == "2Gi/1Gi"
	})
	out, err := runExpand(ctx, c, ns, "2Gi", false)
	require.ErrorIs(t, err, context.Canceled, out)
	assert.Contains(t, err.Error(), "run the same command again to resume")
	assert.Equal(t, old.UID, getStatefulSet(t, c, ns, "db").UID)

	// Run 2 stops after the delete: the garbage collector is slow.
	k.set(true, false)
	ctx = waitUntil(t, func(ctx context.Context) bool {
		sts := &appsv1.StatefulSet{}
		return c.Get(ctx, client.ObjectKeyFromObject(old), sts) == nil && sts.DeletionTimestamp != nil
	})
	out, err = runExpand(ctx, c, ns, "2Gi", false)
	require.ErrorIs(t, err, context.Canceled, out)
	assert.Contains(t, out, "can expand): requested 2Gi; waiting for the volume to grow", "run 1 requested it already")
	assert.False(t, stateSecretGone(t, c, ns, "db"), "the StatefulSet to create is saved")

	// The garbage collector catches up; the StatefulSet is gone.
	k.set(true, true)
	eventually(t, "the orphaning delete", func() bool {
		return c.Get(context.Background(), client.ObjectKeyFromObject(old), &appsv1.StatefulSet{}) != nil
	})

	// A run with another size refuses rather than mix two plans.
	out, err = runExpand(context.Background(), c, ns, "3Gi", false)
	require.ErrorIs(t, err, expand.ErrRefused, out)
	assert.Contains(t, err.Error(), "an earlier run was re-creating statefulset/db -n "+ns+" with 2Gi; run it again with --size 2Gi")

	// Run 3 finds no StatefulSet, only the saved one, and finishes.
	out, err = runExpand(context.Background(), c, ns, "2Gi", false)
	require.NoError(t, err, out)
	assert.Contains(t, out, "resuming: the StatefulSet is being re-created")
	sts := getStatefulSet(t, c, ns, "db")
	assert.NotEqual(t, old.UID, sts.UID)
	assert.Equal(t, "2Gi", templateSize(sts))
	assert.Equal(t, []string{"2Gi/2Gi", "2Gi/2Gi", "2Gi/2Gi"}, claimSizes(t, c, ns))
	assert.Equal(t, pods, podUIDs(t, c, ns))
	assert.True(t, stateSecretGone(t, c, ns, "db"))
}

// A StatefulSet admitted under an older, looser policy may not pass
// admission again: expand finds out with its dry-run create and refuses
// before it deletes anything.
func TestExpandRefusesARecreateThatAdmissionWouldDeny(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	class := storageClass(t, c, ns, true)
	startControllers(t, c, ns)
	ctx := context.Background()
	require.NoError(t, c.Create(ctx, service(ns, "db", "", map[string]string{"app": "db"}))) // ClusterIP, not headless
	setPolicy(t, "rules:\n  headless-service-not-headless: Warn\n")
	sts := withStorage(statefulSet(ns, "db", "db", "nginx"), class, "1Gi")
	require.NoError(t, c.Create(ctx, sts))
	for i := range 3 {
		boundClaim(t, c, ns, rules.ClaimName("data", "db", i), class, "1Gi")
	}
	resetPolicy(t)

	out, err := runExpand(ctx, c, ns, "2Gi", false)
	require.ErrorIs(t, err, expand.ErrRefused, out)
	assert.Contains(t, err.Error(), "the apiserver would not accept the re-created StatefulSet, so it is left as it is")
	assert.Contains(t, err.Error(), "[rule: headless-service-not-headless]")
	assert.Equal(t, []string{"1Gi/1Gi", "1Gi/1Gi", "1Gi/1Gi"}, claimSizes(t, c, ns))
	assert.Equal(t, sts.UID, getStatefulSet(t, c, ns, "db").UID)
	assert.True(t, stateSecretGone(t, c, ns, "db"))
}
