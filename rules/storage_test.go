package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/resize"
)

func storageClass(name string, isDefault, expandable bool, created time.Time) *storagev1.StorageClass {
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created)},
		Provisioner: "example.com/csi", AllowVolumeExpansion: ptr.To(expandable)}
	if isDefault {
		sc.Annotations = map[string]string{resize.DefaultClassAnnotation: "true"}
	}
	return sc
}

// withTemplate gives the web StatefulSet a volumeClaimTemplate "data" of
// class (nil: none named), mounted unless unmounted.
func withTemplate(class *string, unmounted bool) *appsv1.StatefulSet {
	sts := withContainer("postgres:16", corev1.EnvVar{Name: "POSTGRES_PASSWORD_FILE", Value: "/x"})
	sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: class}}}
	if !unmounted {
		sts.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/postgresql/data"}}
	}
	return sts
}

func TestStorageRules(t *testing.T) {
	classPath := vctPath.Index(0).Child("spec", "storageClassName")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fast := storageClass("fast", false, true, t0)
	fixed := storageClass("fixed", false, false, t0)
	oldDefault := storageClass("old-default", true, false, t0)
	newDefault := storageClass("new-default", true, true, t0.Add(time.Hour))
	cases := []struct {
		name    string
		sts     *appsv1.StatefulSet
		classes []runtime.Object
		op      admissionv1.Operation
		want    field.ErrorList
		rules   []string
	}{
		{"expandable class", withTemplate(ptr.To("fast"), false), []runtime.Object{fast}, admissionv1.Create, nil, nil},
		{"class not found", withTemplate(ptr.To("gold"), false), []runtime.Object{fast}, admissionv1.Create,
			field.ErrorList{field.NotFound(classPath, "")}, []string{StorageClassNotFound}},
		{"no class and no default", withTemplate(nil, false), []runtime.Object{fast}, admissionv1.Create,
			field.ErrorList{field.Required(classPath, "")}, []string{StorageClassNotFound}},
		{"explicit empty class (static PVs)", withTemplate(ptr.To(""), false), nil, admissionv1.Create, nil, nil},
		{"not expandable", withTemplate(ptr.To("fixed"), false), []runtime.Object{fixed}, admissionv1.Create,
			field.ErrorList{field.Invalid(classPath, "", "")}, []string{StorageClassNotExpandable}},
		{"default class: the newest default applies", withTemplate(nil, false), []runtime.Object{oldDefault, newDefault}, admissionv1.Create, nil, nil},
		{"default class that is not expandable", withTemplate(nil, false), []runtime.Object{oldDefault}, admissionv1.Create,
			field.ErrorList{field.Invalid(classPath, "", "")}, []string{StorageClassNotExpandable}},
		{"judged on CREATE only", withTemplate(ptr.To("gold"), false), nil, admissionv1.Update, nil, nil},
		{"unmounted template", withTemplate(ptr.To("fast"), true), []runtime.Object{fast}, admissionv1.Create,
			field.ErrorList{field.Invalid(vctPath.Index(0).Child("metadata", "name"), "", "")}, []string{VolumeClaimTemplateUnmounted}},
	}
	e := newEngine(t, StorageClassNotFound, StorageClassNotExpandable, VolumeClaimTemplateUnmounted)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &engine.Input[*appsv1.StatefulSet]{Operation: tc.op, Object: tc.sts}
			if tc.op == admissionv1.Update {
				in.OldObject = tc.sts
			}
			got := validate(e, in, objects(tc.classes...)).Findings
			field.ErrorMatcher{}.ByType().ByField().Test(t, tc.want, got.Errors())
			var ids []string
			for _, f := range got {
				ids = append(ids, f.Rule)
				assert.Equal(t, engine.Warn, f.Action)
			}
			assert.Equal(t, tc.rules, ids)
		})
	}
}

func TestPVCRetentionDelete(t *testing.T) {
	base := field.NewPath("spec", "persistentVolumeClaimRetentionPolicy")
	policy := func(deleted, scaled appsv1.PersistentVolumeClaimRetentionPolicyType) *appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy {
		return &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: deleted, WhenScaled: scaled}
	}
	cases := []struct {
		name   string
		image  string
		policy *appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy
		want   field.ErrorList
	}{
		{"retain", "postgres:16", policy(appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType), nil},
		{"unset", "postgres:16", nil, nil},
		{"delete on a database", "postgres:16", policy(appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType),
			field.ErrorList{field.Invalid(base.Child("whenDeleted"), "", ""), field.Invalid(base.Child("whenScaled"), "", "")}},
		{"delete on a cache without a profile", "nginx", policy(appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType), nil},
	}
	e := newEngine(t, PVCRetentionDelete)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sts := withTemplate(ptr.To("fast"), false)
			sts.Spec.Template.Spec.Containers[0].Image = tc.image
			sts.Spec.PersistentVolumeClaimRetentionPolicy = tc.policy
			got := validate(e, create(sts), objects()).Findings
			field.ErrorMatcher{}.ByType().ByField().Test(t, tc.want, got.Errors())
		})
	}
}

func TestWorkloadRules(t *testing.T) {
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{}}}
	mk := func(image string, replicas int32, partition *int32, grace *int64, ready bool, policy appsv1.PodManagementPolicyType) *appsv1.StatefulSet {
		sts := withContainer(image, corev1.EnvVar{Name: "POSTGRES_PASSWORD_FILE", Value: "/x"})
		sts.Spec.Replicas = ptr.To(replicas)
		sts.Spec.PodManagementPolicy = policy
		if partition != nil {
			sts.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: partition}}
		}
		sts.Spec.Template.Spec.TerminationGracePeriodSeconds = grace
		if ready {
			sts.Spec.Template.Spec.Containers[0].ReadinessProbe = probe
		}
		return sts
	}
	gracePath := podSpecPath.Child("terminationGracePeriodSeconds")
	readyPath := podSpecPath.Child("containers").Index(0).Child("readinessProbe")
	cases := []struct {
		name       string
		sts        *appsv1.StatefulSet
		mutationOn bool
		want       field.ErrorList
	}{
		{"healthy", mk("cassandra:4", 3, ptr.To[int32](0), ptr.To[int64](300), true, ""), true, nil},
		{"partition above replicas", mk("nginx", 3, ptr.To[int32](5), nil, true, ""), true, field.ErrorList{field.Invalid(partitionPath, "", "")}},
		{"partition equal to replicas pauses on purpose", mk("nginx", 3, ptr.To[int32](3), nil, true, ""), true, nil},
		{"no readiness probe, OrderedReady", mk("nginx", 3, nil, nil, false, appsv1.OrderedReadyPodManagement), true, field.ErrorList{field.Required(readyPath, "")}},
		{"no readiness probe, defaulted policy", mk("nginx", 3, nil, nil, false, ""), true, field.ErrorList{field.Required(readyPath, "")}},
		{"no readiness probe, Parallel", mk("nginx", 3, nil, nil, false, appsv1.ParallelPodManagement), true, nil},
		{"explicit short grace period", mk("cassandra:4", 3, nil, ptr.To[int64](60), true, ""), true, field.ErrorList{field.Invalid(gracePath, "", "")}},
		{"default grace period, mutation on (it raises it)", mk("cassandra:4", 3, nil, nil, true, ""), true, nil},
		{"default grace period, mutation off", mk("cassandra:4", 3, nil, nil, true, ""), false, field.ErrorList{field.Invalid(gracePath, "", "")}},
		{"no profile", mk("nginx", 3, nil, ptr.To[int64](5), true, ""), false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := only(testConfig(), PartitionExceedsReplicas, ReadinessProbeMissing, TerminationGracePeriodShort)
			cfg.Mutations[TerminationGracePeriod] = tc.mutationOn
			e, err := New(cfg)
			require.NoError(t, err)
			got := admit(e, engine.MutateAndValidate, create(tc.sts), objects()).Findings
			field.ErrorMatcher{}.ByType().ByField().Test(t, tc.want, got.Errors())
		})
	}

	t.Run("a plain scale does not repeat template warnings", func(t *testing.T) {
		e := newEngine(t, ReadinessProbeMissing, TerminationGracePeriodShort)
		old := mk("cassandra:4", 3, nil, ptr.To[int64](60), false, "")
		scaled := old.DeepCopy()
		scaled.Spec.Replicas = ptr.To[int32](5)
		assert.Empty(t, validate(e, &engine.Input[*appsv1.StatefulSet]{Operation: admissionv1.Update, Object: scaled, OldObject: old}, objects()).Findings)
	})
}
