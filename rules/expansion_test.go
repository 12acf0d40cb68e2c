package rules

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/resize"
)

// sized is the web StatefulSet (3 replicas) with template "data" of class
// and size.
func sized(class, size string) *appsv1.StatefulSet {
	sts := withTemplate(ptr.To(class), false)
	sts.Spec.Replicas = ptr.To[int32](3)
	sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}
	return sts
}

// claim is a PVC named name of class and size, in phase.
func claim(name, class, size string, phase corev1.PersistentVolumeClaimPhase) *corev1.PersistentVolumeClaim {
	q := resource.MustParse(size)
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To(class),
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: q}}},
		Status: corev1.PersistentVolumeClaimStatus{Phase: phase, Capacity: corev1.ResourceList{corev1.ResourceStorage: q}},
	}
}

func update(old, new *appsv1.StatefulSet) *engine.Input[*appsv1.StatefulSet] {
	return &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, Object: new, OldObject: old}
}

func TestVolumeClaimTemplateRules(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fast := storageClass("fast", false, true, t0)
	fixed := storageClass("fixed", false, false, t0)
	bound := []runtime.Object{fast, fixed,
		claim("data-web-0", "fast", "10Gi", corev1.ClaimBound),
		claim("data-web-1", "fast", "10Gi", corev1.ClaimBound),
		claim("data-web-2", "fast", "10Gi", corev1.ClaimBound)}
	req := requestPath(0)
	classPath := vctPath.Index(0).Child("spec", "storageClassName")
	cases := []struct {
		name   string
		old    *appsv1.StatefulSet
		change func(*appsv1.StatefulSet)
		objs   []runtime.Object
		want   field.ErrorList
		rules  []string
	}{
		{"no change to templates", sized("fast", "10Gi"), func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To[int32](5) }, bound, nil, nil},
		{"same size written differently", sized("fast", "10Gi"), func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("10240Mi")
		}, bound, nil, nil},
		{"growth", sized("fast", "10Gi"), resizeTo("20Gi"), bound,
			field.ErrorList{field.Forbidden(req, "")}, []string{VolumeClaimTemplateResize}},
		{"shrink", sized("fast", "10Gi"), resizeTo("5Gi"), bound,
			field.ErrorList{field.Invalid(req, "", "")}, []string{VolumeClaimTemplateShrink}},
		{"class change", sized("fast", "10Gi"), func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates[0].Spec.StorageClassName = ptr.To("fixed")
		}, bound, field.ErrorList{field.Forbidden(classPath, "")}, []string{VolumeClaimTemplateImmutable}},
		{"growth and access mode change: immutable only", sized("fast", "10Gi"), func(s *appsv1.StatefulSet) {
			resizeTo("20Gi")(s)
			s.Spec.VolumeClaimTemplates[0].Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod}
		}, bound, field.ErrorList{field.Forbidden(vctPath.Index(0).Child("spec", "accessModes"), "")}, []string{VolumeClaimTemplateImmutable}},
		{"label added", sized("fast", "10Gi"), func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates[0].Labels = map[string]string{"tier": "db"}
		}, bound, field.ErrorList{field.Forbidden(vctPath.Index(0).Child("metadata", "labels"), "")}, []string{VolumeClaimTemplateImmutable}},
		{"template added", sized("fast", "10Gi"), func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = append(s.Spec.VolumeClaimTemplates, corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "logs"}})
		}, bound, field.ErrorList{field.Forbidden(vctPath.Index(1), "")}, []string{VolumeClaimTemplateImmutable}},
		{"template removed", sized("fast", "10Gi"), func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = nil
		}, bound, field.ErrorList{field.Forbidden(vctPath.Index(0), "")}, []string{VolumeClaimTemplateImmutable}},
		{"growth on a class that cannot expand", sized("fixed", "10Gi"), resizeTo("20Gi"), []runtime.Object{fast, fixed,
			claim("data-web-0", "fixed", "10Gi", corev1.ClaimBound)},
			field.ErrorList{field.Forbidden(req, ""), field.Forbidden(req, ""), field.Invalid(classPath, "", "")},
			[]string{StorageClassNotExpandable, VolumeClaimTemplateResize, StorageClassNotExpandable}},
		{"growth where one existing PVC has another class", sized("fast", "10Gi"), resizeTo("20Gi"), []runtime.Object{fast, fixed,
			claim("data-web-0", "fast", "10Gi", corev1.ClaimBound), claim("data-web-1", "fixed", "10Gi", corev1.ClaimBound)},
			field.ErrorList{field.Forbidden(req, ""), field.Forbidden(req, "")},
			[]string{StorageClassNotExpandable, VolumeClaimTemplateResize}},
	}
	e := newEngine(t, VolumeClaimTemplateShrink, VolumeClaimTemplateImmutable, VolumeClaimTemplateResize, StorageClassNotExpandable, PVCSmallerThanTemplate)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next := tc.old.DeepCopy()
			tc.change(next)
			got := validate(e, update(tc.old, next), objects(tc.objs...)).Findings
			field.ErrorMatcher{}.ByType().ByField().Test(t, tc.want, got.Errors())
			var ids []string
			for _, f := range got {
				ids = append(ids, f.Rule)
				assert.Equal(t, engine.Deny, f.Action, f.String())
			}
			assert.Equal(t, tc.rules, ids)
		})
	}
}

func resizeTo(size string) func(*appsv1.StatefulSet) {
	return func(s *appsv1.StatefulSet) {
		s.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse(size)
	}
}

func TestResizeMessageListsPlanAndCommand(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	old := sized("fast", "10Gi")
	old.Spec.Replicas = ptr.To[int32](2)
	next := old.DeepCopy()
	resizeTo("20Gi")(next)
	lk := objects(storageClass("fast", false, true, t0),
		claim("data-web-0", "fast", "10Gi", corev1.ClaimBound),
		claim("data-web-4", "fast", "10Gi", corev1.ClaimBound), // leftover of a scale-down
		claim("data-web-1", "fast", "10Gi", corev1.ClaimPending),
		claim("data-other-0", "fast", "10Gi", corev1.ClaimBound))
	got := validate(newEngine(t, VolumeClaimTemplateResize), update(old, next), lk).Findings
	require.Len(t, got, 1)
	msg := got[0].String()
	assert.Contains(t, msg, `spec.volumeClaimTemplates[0].spec.resources.requests[storage]: Forbidden:`)
	assert.Contains(t, msg, `growing template "data" from 10Gi to 20Gi`)
	assert.Contains(t, msg, "run: stsguard expand statefulset/web -n ns --template data --size 20Gi")
	assert.Contains(t, msg, `data-web-0 (10Gi, StorageClass "fast", can expand)`)
	assert.Contains(t, msg, `data-web-4 (10Gi, StorageClass "fast", can expand, leftover of a scale-down)`)
	assert.Contains(t, msg, "it will refuse until: data-web-1: it is Pending, not Bound")
	assert.NotContains(t, msg, "data-other-0")
	assert.Contains(t, msg, "[rule: volume-claim-template-resize]")
}

func TestStorageClassNotExpandableActions(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lk := objects(storageClass("fixed", false, false, t0))
	old := sized("fixed", "10Gi")
	next := old.DeepCopy()
	resizeTo("20Gi")(next)

	e := newEngine(t, StorageClassNotExpandable)
	onCreate := validate(e, create(old), lk).Findings
	require.Len(t, onCreate, 1)
	assert.Equal(t, engine.Warn, onCreate[0].Action, "a class that cannot expand is a warning when the StatefulSet is created")
	onResize := validate(e, update(old, next), lk).Findings
	require.Len(t, onResize, 1)
	assert.Equal(t, engine.Deny, onResize[0].Action, "and a denial when a resize needs it")

	cfg := only(testConfig(), StorageClassNotExpandable)
	cfg.Actions[StorageClassNotExpandable] = engine.Warn
	e, err := New(cfg)
	require.NoError(t, err)
	onResize = validate(e, update(old, next), lk).Findings
	require.Len(t, onResize, 1)
	assert.Equal(t, engine.Warn, onResize[0].Action, "a policy action applies to both")
}

func TestPVCSmallerThanTemplate(t *testing.T) {
	cases := []struct {
		name string
		pvcs []runtime.Object
		want string // "" for no finding
	}{
		{"no PVCs", nil, ""},
		{"PVCs at the template size", []runtime.Object{claim("data-web-0", "fast", "20Gi", corev1.ClaimBound)}, ""},
		{"PVC requested larger, capacity still smaller (resize in progress)", []runtime.Object{func() runtime.Object {
			c := claim("data-web-0", "fast", "20Gi", corev1.ClaimBound)
			c.Status.Capacity[corev1.ResourceStorage] = resource.MustParse("10Gi")
			return c
		}()}, ""},
		{"smaller PVCs", []runtime.Object{claim("data-web-10", "fast", "10Gi", corev1.ClaimBound), claim("data-web-2", "fast", "5Gi", corev1.ClaimBound),
			claim("data-web-x", "fast", "1Gi", corev1.ClaimBound), claim("data-webapp-0", "fast", "1Gi", corev1.ClaimBound)},
			"PVCs data-web-2 (5Gi), data-web-10 (10Gi) already exist"},
	}
	e := newEngine(t, PVCSmallerThanTemplate)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := validate(e, create(sized("fast", "20Gi")), objects(tc.pvcs...)).Findings
			if tc.want == "" {
				assert.Empty(t, got)
				return
			}
			require.Len(t, got, 1)
			assert.Equal(t, engine.Warn, got[0].Action)
			assert.Equal(t, requestPath(0).String(), got[0].Error.Field)
			assert.Contains(t, got[0].String(), tc.want)
			assert.Contains(t, got[0].String(), "stsguard expand statefulset/web -n ns --template data --size 20Gi")
		})
	}
	t.Run("not on UPDATE", func(t *testing.T) {
		sts := sized("fast", "20Gi")
		assert.Empty(t, validate(e, update(sts, sts), objects(claim("data-web-0", "fast", "1Gi", corev1.ClaimBound))).Findings)
	})
}

func TestPlanResize(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fast, fixed := storageClass("fast", false, true, t0), storageClass("fixed", false, false, t0)
	twenty := resource.MustParse("20Gi")
	static := claim("data-web-1", "", "10Gi", corev1.ClaimBound)
	static.Spec.StorageClassName = nil
	cases := []struct {
		name     string
		objs     []runtime.Object
		problems []string
	}{
		{"all bound and expandable", []runtime.Object{fast, claim("data-web-0", "fast", "10Gi", corev1.ClaimBound)}, nil},
		{"already resized", []runtime.Object{fixed, claim("data-web-0", "fixed", "20Gi", corev1.ClaimBound)}, nil},
		{"class cannot expand", []runtime.Object{fixed, claim("data-web-0", "fixed", "10Gi", corev1.ClaimBound)},
			[]string{`data-web-0: its StorageClass "fixed" does not set allowVolumeExpansion: true`}},
		{"class missing", []runtime.Object{claim("data-web-0", "gone", "10Gi", corev1.ClaimBound)},
			[]string{`data-web-0: its StorageClass "gone" does not exist`}},
		{"static claim", []runtime.Object{fast, static}, []string{"data-web-1: it has no StorageClass"}},
		{"pending", []runtime.Object{fast, claim("data-web-2", "fast", "10Gi", corev1.ClaimPending)}, []string{"data-web-2: it is Pending, not Bound"}},
		{"larger claim", []runtime.Object{fast, claim("data-web-0", "fast", "30Gi", corev1.ClaimBound)}, []string{"data-web-0: it requests 30Gi already"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := resize.New(context.Background(), sized("fast", "10Gi"), "data", twenty, objects(tc.objs...))
			require.NoError(t, err)
			assert.Len(t, p.Claims, 3, "ordinals 0..2, created or not")
			got := p.Problems()
			require.Len(t, got, len(tc.problems), "%q", got)
			for i := range got {
				assert.Contains(t, got[i], tc.problems[i])
			}
		})
	}
	t.Run("start ordinal", func(t *testing.T) {
		sts := sized("fast", "10Gi")
		sts.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 5}
		p, err := resize.New(context.Background(), sts, "data", twenty, objects(fast))
		require.NoError(t, err)
		names := []string{}
		for _, c := range p.Claims {
			names = append(names, c.Name)
		}
		assert.Equal(t, []string{"data-web-5", "data-web-6", "data-web-7"}, names)
	})
	t.Run("shrink", func(t *testing.T) {
		p, err := resize.New(context.Background(), sized("fast", "10Gi"), "data", resource.MustParse("5Gi"), objects(fast))
		require.NoError(t, err)
		assert.Contains(t, p.Problems()[0], `volumeClaimTemplate "data" requests 10Gi, more than 5Gi`)
	})
	t.Run("unknown template", func(t *testing.T) {
		_, err := resize.New(context.Background(), sized("fast", "10Gi"), "logs", twenty, objects(fast))
		assert.EqualError(t, err, `StatefulSet ns/web has no volumeClaimTemplate "logs"; it has "data"`)
	})
	t.Run("lookup failure", func(t *testing.T) {
		_, err := resize.New(context.Background(), sized("fast", "10Gi"), "data", twenty, errLookup{assert.AnError})
		assert.Error(t, err)
	})
}

func TestResized(t *testing.T) {
	twenty := resource.MustParse("20Gi")
	c := claim("data-web-0", "fast", "20Gi", corev1.ClaimBound)
	c.Status.Capacity[corev1.ResourceStorage] = resource.MustParse("10Gi")
	assert.False(t, resize.Resized(c, twenty))
	c.Status.Conditions = []corev1.PersistentVolumeClaimCondition{{Type: corev1.PersistentVolumeClaimFileSystemResizePending, Status: corev1.ConditionTrue}}
	assert.True(t, resize.Resized(c, twenty), "FileSystemResizePending: the volume is resized, the file system follows at the next pod start")
	c.Status.Conditions = nil
	c.Status.Capacity[corev1.ResourceStorage] = resource.MustParse("20Gi")
	assert.True(t, resize.Resized(c, twenty))
}

// A resize plan lists at most resize.MaxClaimsNotCreated claims not created yet,
// whatever spec.replicas says: a huge count costs no memory.
func TestResizePlanIsBoundedByClaimsNotReplicas(t *testing.T) {
	sts := testStatefulSet("web")
	sts.Spec.Replicas = ptr.To[int32](math.MaxInt32)
	sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}}
	plan, err := resize.New(context.Background(), sts, "data", resource.MustParse("2Gi"), objects())
	require.NoError(t, err)
	assert.Len(t, plan.Claims, resize.MaxClaimsNotCreated)
	assert.Equal(t, math.MaxInt32-resize.MaxClaimsNotCreated, plan.MoreNotCreated)
	assert.Contains(t, plan.Summary(), "and 2147483637 more ordinals without a PVC yet")
}
