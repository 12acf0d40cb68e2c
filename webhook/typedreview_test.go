package webhook_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/webhook"
)

// Serve decodes request.object and request.oldObject as the webhook's kind
// in the envelope's pass, and refuses to where that could answer
// differently from the raw bytes: the answers are controller-runtime's,
// byte for byte, for bodies on either side of that line.
func TestServeTypedObjectsAnswerAsControllerRuntime(t *testing.T) {
	sts, objs := cassandraFixture(t)
	stsGVK := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
	create := string(reviewBody(t, sts))
	obj, err := json.Marshal(sts)
	require.NoError(t, err)
	// A first object that would change the answer if it were merged into
	// the second instead of replaced by it.
	first := `{"spec":{"persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Delete"},"serviceName":"missing"}}`
	shell := sts.DeepCopy()
	shell.Spec.Template.Spec.Containers[0].Command = []string{"sh", "-c", "nodetool drain && sleep 5 <in >out"}
	grown := sts.DeepCopy()
	grown.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](400)
	svc := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cassandra"}, Spec: corev1.ServiceSpec{ClusterIP: "None"}}
	scale := &autoscalingv1.Scale{TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
		ObjectMeta: metav1.ObjectMeta{Namespace: sts.Namespace, Name: sts.Name}, Spec: autoscalingv1.ScaleSpec{Replicas: 9}}
	scaleBody := strings.Replace(string(review(t, admissionv1.Update, metav1.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}, scale, scale)),
		`"operation"`, `"subResource":"scale","operation"`, 1)

	update := string(review(t, admissionv1.Update, stsGVK, grown, sts))
	bodies := map[string]string{
		"create":                          create,
		"update":                          update,
		"delete":                          string(review(t, admissionv1.Delete, stsGVK, nil, sts)),
		"escaped ampersand in a command":  string(reviewBody(t, shell)),
		"object given twice":              strings.Replace(create, `"object":`, `"object":`+first+`,"object":`, 1),
		"object given twice, escaped key": strings.Replace(create, `"object":`, `"object":`+first+`,"obj\u0065ct":`, 1),
		"oldObject given twice":           strings.Replace(update, `"oldObject":`+string(obj), `"oldObject":`+string(obj)+`,"oldObject":{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"cassandra"}}`, 1),
		"request dropped after":           strings.TrimSuffix(create, "}") + `,"request":null}`,
		"request given twice":             strings.TrimSuffix(create, "}") + `,"request":{"uid":"2"}}`,
		"object null":                     strings.Replace(create, `"object":`+string(obj), `"object":null`, 1),
		"object empty":                    strings.Replace(create, `"object":`+string(obj), `"object":{}`, 1),
		"object a string":                 strings.Replace(create, `"object":`+string(obj), `"object":"x"`, 1),
		"object with a bad field":         strings.Replace(create, `"spec":{`, `"spec":{"replicas":"three",`, 1),
		"object of another kind":          strings.Replace(create, `"object":`+string(obj), `"object":{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"}}`, 1),
		"scale subresource":               scaleBody,
		"a Service":                       string(review(t, admissionv1.Create, serviceGVK, svc, nil)),
	}
	for _, path := range []string{webhook.ValidateStatefulSetPath, webhook.MutateStatefulSetPath, webhook.ValidateServicePath} {
		want, got := controllerRuntime(t, objs...), handlers(t, objs...)
		for name, body := range bodies {
			t.Run(path+"/"+name, func(t *testing.T) { sameAnswer(t, want[path], got[path], path, body) })
		}
	}
}
