package webhook

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// decodeTypedReview takes the reviews the apiserver sends, and refuses
// the bodies whose raw bytes could decode differently
// (TestServeTypedObjectsAnswerAsControllerRuntime checks the answers).
func TestDecodeTypedReview(t *testing.T) {
	const (
		sts   = `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"web"},"spec":{"serviceName":"web"}}`
		other = `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"other"}}`
	)
	review := func(request string) string {
		return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1",` + request + `}}`
	}
	cases := []struct {
		name              string
		body              string
		typed             bool
		object, oldObject string // the names decoded
	}{
		{"create", review(`"operation":"CREATE","object":` + sts), true, "web", ""},
		{"update", review(`"operation":"UPDATE","object":` + sts + `,"oldObject":` + other), true, "web", "other"},
		{"delete", review(`"operation":"DELETE","oldObject":` + sts), true, "", "web"},
		{"no object", review(`"operation":"CREATE"`), true, "", ""},
		{"object null", review(`"operation":"CREATE","object":null`), true, "", ""},
		{"escaped <, > and &", review(`"operation":"CREATE","object":{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"a\u0026\u003c\u003eb"}}`), true, "a&<>b", ""},
		{"request dropped after the object", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"object":` + sts + `},"request":null}`, true, "web", ""},
		{"object twice", review(`"object":` + other + `,"object":` + sts), false, "", ""},
		{"oldObject twice", review(`"oldObject":` + other + `,"oldObject":` + sts), false, "", ""},
		{"an object key spelled with an escape", review(`"object":` + other + `,"obj\u0065ct":` + sts), false, "", ""},
		{"an escaped letter anywhere", review(`"object":{"metadata":{"name":"\u0061"}}`), false, "", ""},
		{"object of another type", review(`"object":{"spec":{"replicas":"three"}}`), false, "", ""},
		{"object a string", review(`"object":"x"`), false, "", ""},
		{"subresource", review(`"subResource":"scale","object":` + sts), false, "", ""},
		{"not an AdmissionReview", `[]`, false, "", ""},
		{"as encoding/json writes a kubectl-applied StatefulSet", marshalledReview(t), true, "db", "db"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var req admissionv1.AdmissionRequest
			ar := admissionv1.AdmissionReview{Request: &req}
			if !assert.Equal(t, tc.typed, decodeTypedReview[appsv1.StatefulSet]([]byte(tc.body), &ar)) || !tc.typed {
				return
			}
			assert.Equal(t, "AdmissionReview", ar.Kind)
			assert.Equal(t, "admission.k8s.io/v1", ar.APIVersion)
			for _, o := range []struct {
				name string
				got  *runtime.RawExtension
			}{{tc.object, &req.Object}, {tc.oldObject, &req.OldObject}} {
				assert.Nil(t, o.got.Raw)
				if o.name == "" {
					assert.Nil(t, o.got.Object)
					continue
				}
				if s, ok := o.got.Object.(*appsv1.StatefulSet); assert.True(t, ok, "%T", o.got.Object) {
					assert.Equal(t, o.name, s.Name)
				}
			}
		})
	}
}

// marshalledReview is an UPDATE review of a StatefulSet that kubectl apply
// wrote (its last-applied annotation holds the manifest as a JSON string)
// with a label value holding <, > and &, as encoding/json writes it: the
// common body, which must take the typed path.
func marshalledReview(t *testing.T) string {
	t.Helper()
	sts := func() *appsv1.StatefulSet {
		return &appsv1.StatefulSet{
			TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
			ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "prod",
				Labels:      map[string]string{"team": "a&b<c>"},
				Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db","namespace":"prod"},"spec":{"serviceName":"db","template":{"spec":{"containers":[{"env":[{"name":"MYSQL_ROOT_PASSWORD","valueFrom":{"secretKeyRef":{"key":"password","name":"db-credentials"}}}],"image":"mysql:8.4","name":"mysql"}]}}}}` + "\n"}},
			Spec: appsv1.StatefulSetSpec{ServiceName: "db"},
		}
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "1", Operation: admissionv1.Update,
			Object: runtime.RawExtension{Object: sts()}, OldObject: runtime.RawExtension{Object: sts()}},
	})
	require.NoError(t, err)
	return string(b)
}
