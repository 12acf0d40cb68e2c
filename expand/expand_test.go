package expand

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/resize"
)

const ns = "shop"

// db returns StatefulSet db of replicas pods whose volumeClaimTemplate data
// requests size on StorageClass fast.
func db(replicas int32, size string) *appsv1.StatefulSet {
	labels := map[string]string{"app": "db"}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db", UID: "uid-1"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(replicas),
			ServiceName: "db",
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "postgres:17"}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					StorageClassName: ptr.To("fast"),
					Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
				},
			}},
		},
	}
}

// boundClaim returns PVC data-db-<ordinal>, Bound, requesting and holding
// size.
func boundClaim(ordinal, size string) *corev1.PersistentVolumeClaim {
	q := resource.MustParse(size)
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data-db-" + ordinal, Labels: map[string]string{"app": "db"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To("fast"),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: q}},
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: corev1.ResourceList{corev1.ResourceStorage: q}},
	}
}

var fast = &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Provisioner: "csi.example.com", AllowVolumeExpansion: ptr.To(true)}

// stateSecret returns the state Secret of a re-create of StatefulSet db
// under way, holding data (labelled as expand labels it).
func stateSecret(data []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: StateSecretName("db"), Labels: map[string]string{expandLabel: "db"}},
		Data:       map[string][]byte{stateKey: data},
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

type noWarnings struct{}

func (noWarnings) Take() []string { return nil }

// readOnly is a fake client that fails the test on any write.
func readOnly(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	fail := func(verb string, obj client.Object) error {
		t.Errorf("%s %T %s: a refused run must change nothing", verb, obj, obj.GetName())
		return apierrors.NewForbidden(schema.GroupResource{}, obj.GetName(), nil)
	}
	return fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
			return fail("create", obj)
		},
		Update: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.UpdateOption) error {
			return fail("update", obj)
		},
		Patch: func(_ context.Context, _ client.WithWatch, obj client.Object, _ client.Patch, _ ...client.PatchOption) error {
			return fail("patch", obj)
		},
		Delete: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.DeleteOption) error {
			return fail("delete", obj)
		},
	}).Build()
}

// Run refuses, before its first write, what it cannot carry out: the
// refusals that need no cluster to set up (a state Secret that is not what
// expand writes, an earlier run at another size).
func TestRunRefusesBeforeAnyWrite(t *testing.T) {
	other := db(2, "20Gi")
	other.Name = "other"
	cases := []struct {
		name     string
		objs     []client.Object
		warnings interface{ Take() []string }
		refused  bool
		want     string
	}{
		{"no Warnings", []client.Object{db(2, "10Gi"), fast}, nil, false, "expand.Options.Warnings is required"},
		{"a state Secret that holds no StatefulSet", []client.Object{db(2, "10Gi"), fast, stateSecret([]byte("{not json"))}, noWarnings{}, true,
			`the Secret stsguard-expand-db does not hold statefulset/db with template "data"; delete it if no expand is running`},
		{"a state Secret that holds another StatefulSet", []client.Object{db(2, "10Gi"), fast, stateSecret(mustJSON(t, other))}, noWarnings{}, true,
			`does not hold statefulset/db with template "data"`},
		{"an earlier run at another size, the StatefulSet deleted", []client.Object{fast, boundClaim("0", "20Gi"), stateSecret(mustJSON(t, db(2, "20Gi")))}, noWarnings{}, true,
			"an earlier run was re-creating statefulset/db -n shop with 20Gi; run it again with --size 20Gi to finish it first"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Run(context.Background(), readOnly(t, tc.objs...), Options{
				Namespace: ns, Name: "db", Template: "data", Size: resource.MustParse("30Gi"), Poll: time.Millisecond, Warnings: tc.warnings,
			})
			require.ErrorContains(t, err, tc.want)
			assert.Equal(t, tc.refused, errors.Is(err, ErrRefused), "%v", err)
		})
	}
}

// An admission webhook that changes what it admits without saying so
// (stsguard's warnings are how expand's dry run finds its changes) makes the
// StatefulSet controller replace every pod: Run finishes the re-create and
// says so, rather than report success.
func TestRunReportsAPodTemplateChangedByAdmission(t *testing.T) {
	cases := []struct {
		name    string
		webhook func(*appsv1.StatefulSet) // what admission does to the created StatefulSet
		want    string                    // in Run's error; "" for none
	}{
		{"admission changes nothing", func(*appsv1.StatefulSet) {}, ""},
		{"a webhook sets a grace period silently", func(sts *appsv1.StatefulSet) {
			sts.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](120)
		}, "statefulset/db was created, but admission changed its pod template: the StatefulSet controller will replace the pods one by one"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The PVCs have the size already: only the re-create is left.
			c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).
				WithObjects(db(2, "10Gi"), fast, boundClaim("0", "20Gi"), boundClaim("1", "20Gi")).
				WithInterceptorFuncs(interceptor.Funcs{
					Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
						o := &client.CreateOptions{}
						o.ApplyOptions(opts)
						sts, ok := obj.(*appsv1.StatefulSet)
						switch {
						case ok && len(o.DryRun) > 0:
							// The apiserver runs admission on a dry-run
							// create, then finds the name taken.
							return apierrors.NewAlreadyExists(schema.GroupResource{Group: "apps", Resource: "statefulsets"}, obj.GetName())
						case ok:
							tc.webhook(sts)
						}
						return c.Create(ctx, obj, opts...)
					},
				}).Build()
			var out bytes.Buffer
			err := Run(context.Background(), c, Options{
				Namespace: ns, Name: "db", Template: "data", Size: resource.MustParse("20Gi"), Poll: time.Millisecond, Out: &out, Warnings: noWarnings{},
			})
			if tc.want == "" {
				require.NoError(t, err, out.String())
			} else {
				require.ErrorContains(t, err, tc.want, out.String())
			}
			assert.Contains(t, out.String(), `statefulset/db: created with template "data" at 20Gi`)

			got := &appsv1.StatefulSet{}
			require.NoError(t, c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "db"}, got))
			q, _ := resize.StorageRequest(&got.Spec.VolumeClaimTemplates[0])
			assert.Equal(t, "20Gi", q.String())
			assert.NotContains(t, got.Annotations, engine.RecreateAnnotation, "removed once created")
			err = c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: StateSecretName("db")}, &corev1.Secret{})
			assert.True(t, apierrors.IsNotFound(err), "the state Secret is dropped: %v", err)
		})
	}
}

// recreated is the StatefulSet expand creates: what a client may set of
// the live one, marked as a re-create, with the template grown.
func TestRecreated(t *testing.T) {
	live := db(3, "10Gi")
	live.ResourceVersion, live.Generation = "42", 7
	live.CreationTimestamp = metav1.Now()
	live.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	live.Labels = map[string]string{"team": "shop"}
	live.Annotations = map[string]string{"note": "kept"}
	live.OwnerReferences = []metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "Database", Name: "db", UID: "owner"}}
	live.Finalizers = []string{metav1.FinalizerOrphanDependents, "example.com/keep", metav1.FinalizerDeleteDependents}
	live.Status = appsv1.StatefulSetStatus{Replicas: 3, ReadyReplicas: 3}
	orig := live.DeepCopy()

	want := &appsv1.StatefulSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: "db",
			Labels:          map[string]string{"team": "shop"},
			Annotations:     map[string]string{"note": "kept", engine.RecreateAnnotation: "uid-1"},
			OwnerReferences: live.OwnerReferences,
			Finalizers:      []string{"example.com/keep"},
		},
		Spec: db(3, "20Gi").Spec,
	}
	cases := []struct {
		name     string
		template string
		size     string
		want     *appsv1.StatefulSet
	}{
		{"grown", "data", "20Gi", want},
		{"a template larger already keeps its size", "data", "5Gi", func() *appsv1.StatefulSet {
			w := want.DeepCopy()
			w.Spec = db(3, "10Gi").Spec
			return w
		}()},
		{"no such template", "logs", "20Gi", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := recreated(live, tc.template, resource.MustParse(tc.size))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("recreated (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(orig, live); diff != "" {
				t.Errorf("the live StatefulSet was modified (-before +after):\n%s", diff)
			}
		})
	}
}

// The plan lists what happens to each claim, one line each.
func TestPrintPlan(t *testing.T) {
	q := resource.MustParse
	claim := func(ordinal int, request, capacity string) resize.Claim {
		pvc := boundClaim(string(rune('0'+ordinal)), request)
		pvc.Status.Capacity[corev1.ResourceStorage] = q(capacity)
		return resize.Claim{Name: pvc.Name, Ordinal: ordinal, PVC: pvc, Request: q(request), Capacity: q(capacity), StorageClass: "fast", Expandable: true}
	}
	pending := claim(4, "20Gi", "10Gi")
	pending.PVC.Status.Conditions = []corev1.PersistentVolumeClaimCondition{{Type: corev1.PersistentVolumeClaimFileSystemResizePending, Status: corev1.ConditionTrue}}
	p := &resize.Plan{
		Namespace: ns, StatefulSet: "db", Template: "data", From: q("10Gi"), To: q("20Gi"), TemplateClass: "fast", TemplateExpandable: true,
		Claims: []resize.Claim{
			claim(0, "10Gi", "10Gi"),
			claim(1, "20Gi", "10Gi"),
			claim(2, "20Gi", "20Gi"),
			{Name: "data-db-3", Ordinal: 3, Problem: "it is Pending, not Bound"},
			pending,
			{Name: "data-db-5", Ordinal: 5},
		},
		MoreNotCreated: 2,
	}
	var out bytes.Buffer
	r := &run{o: Options{Out: &out}}
	r.printPlan(p)
	want := []string{
		`plan: template "data" 10Gi -> 20Gi; 8 PVC(s):`,
		`  data-db-0 (` + p.Claims[0].Describe() + `): resize 10Gi -> 20Gi`,
		`  data-db-1 (` + p.Claims[1].Describe() + `): requested 20Gi; waiting for the volume to grow`,
		`  data-db-2 (` + p.Claims[2].Describe() + `): at 20Gi already`,
		`  data-db-3 (` + p.Claims[3].Describe() + `): cannot: it is Pending, not Bound`,
		`  data-db-4 (` + p.Claims[4].Describe() + `): at 20Gi already`,
		`  data-db-5 (` + p.Claims[5].Describe() + `): created at 20Gi when its pod first starts`,
		`  and 2 more ordinals without a PVC yet: created at 20Gi when their pods first start`,
	}
	assert.Equal(t, want, strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"))
}

// claimState describes a claim's resize as expand prints its progress.
func TestClaimState(t *testing.T) {
	cases := []struct {
		name       string
		capacity   string
		conditions []corev1.PersistentVolumeClaimCondition
		want       string
	}{
		{"no condition", "10Gi", nil, "capacity 10Gi"},
		{"resizing", "10Gi", []corev1.PersistentVolumeClaimCondition{{Type: corev1.PersistentVolumeClaimResizing, Status: corev1.ConditionTrue}}, "capacity 10Gi, Resizing"},
		{"file system pending", "20Gi", []corev1.PersistentVolumeClaimCondition{{Type: corev1.PersistentVolumeClaimFileSystemResizePending, Status: corev1.ConditionTrue}},
			"capacity 20Gi, volume resized; the file system grows when its pod restarts (FileSystemResizePending)"},
		{"a condition that is not True is left out", "10Gi", []corev1.PersistentVolumeClaimCondition{{Type: corev1.PersistentVolumeClaimResizing, Status: corev1.ConditionFalse}}, "capacity 10Gi"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pvc := boundClaim("0", tc.capacity)
			pvc.Status.Conditions = tc.conditions
			assert.Equal(t, tc.want, claimState(pvc))
		})
	}
}
