package webhook_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/webhook"
)

// scaleReview is the AdmissionReview the apiserver sends for an UPDATE of
// statefulsets/scale (kubectl scale): request.kind autoscaling/v1 Scale,
// request.resource statefulsets, request.subResource scale.
func scaleReview(t *testing.T, sts *appsv1.StatefulSet, replicas int32, object []byte) []byte {
	t.Helper()
	scale := func(n int32) []byte {
		raw, err := json.Marshal(&autoscalingv1.Scale{
			TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
			ObjectMeta: metav1.ObjectMeta{Namespace: sts.Namespace, Name: sts.Name},
			Spec:       autoscalingv1.ScaleSpec{Replicas: n},
		})
		require.NoError(t, err)
		return raw
	}
	if object == nil {
		object = scale(replicas)
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "5ca1e", Operation: admissionv1.Update, Namespace: sts.Namespace, Name: sts.Name,
			Kind:        metav1.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"},
			Resource:    metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"},
			SubResource: "scale",
			Object:      runtime.RawExtension{Raw: object},
			OldObject:   runtime.RawExtension{Raw: scale(*sts.Spec.Replicas)},
		},
	})
	require.NoError(t, err)
	return body
}

func TestScaleSubresourceIsJudgedLikeAReplicasUpdate(t *testing.T) {
	sts, objs := cassandraFixture(t)
	sts.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](2)}}
	h := handlers(t, append(objs, sts)...)[webhook.ValidateStatefulSetPath]

	cases := []struct {
		name     string
		replicas int32
		object   []byte
		want     string // a warning that must be there; "" for none of partition-exceeds-replicas
	}{
		{"scaled below the partition", 1, nil, "[rule: partition-exceeds-replicas]"},
		{"scaled above it", 5, nil, ""},
		{"a body that is not a Scale is admitted, never a 400", 1, []byte(`{"kind":"Pod","apiVersion":"v1"}`), "stsguard could not judge this scale"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := serve(t, h, scaleReview(t, sts, tc.replicas, tc.object))
			assert.True(t, r.Allowed, "%+v", r.Result)
			all := ""
			for _, w := range r.Warnings {
				all += w + "\n"
			}
			if tc.want == "" {
				assert.NotContains(t, all, "partition-exceeds-replicas")
				return
			}
			assert.Contains(t, all, tc.want)
		})
	}

	t.Run("a StatefulSet stsguard has not seen is admitted with a warning", func(t *testing.T) {
		other := sts.DeepCopy()
		other.Name = "unknown"
		r := serve(t, h, scaleReview(t, other, 1, nil))
		assert.True(t, r.Allowed)
		require.Len(t, r.Warnings, 1)
		assert.Contains(t, r.Warnings[0], "is not in stsguard's cache yet")
	})
}
