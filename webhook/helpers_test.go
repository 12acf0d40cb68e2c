package webhook_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/lookuptest"
	"github.com/stsguard/stsguard/manifest"
	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/webhook"
)

// seedStatefulSet loads a StatefulSet from examples/ and applies the API
// defaults the apiserver applies before admission.
func seedStatefulSet(tb testing.TB, example string) *appsv1.StatefulSet {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "examples", example, "*.yaml"))
	require.NoError(tb, err)
	require.NotEmpty(tb, files)
	data, err := os.ReadFile(files[0])
	require.NoError(tb, err)
	objs, errs := manifest.Parse(files[0], data, "default")
	require.Empty(tb, errs)
	for _, o := range objs {
		obj := o.Object
		if sts, ok := obj.(*appsv1.StatefulSet); ok {
			if sts.Namespace == "" {
				sts.Namespace = "default"
			}
			sts.Spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
			sts.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](0)}}
			if sts.Spec.Template.Spec.TerminationGracePeriodSeconds == nil {
				sts.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
			}
			return sts
		}
	}
	tb.Fatalf("no StatefulSet in %s", files[0])
	return nil
}

func reviewBody(tb testing.TB, sts *appsv1.StatefulSet) []byte {
	return review(tb, admissionv1.Create, metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, sts, nil)
}

// review encodes an AdmissionReview request for op on obj (nil on DELETE)
// with old as request.oldObject (nil on CREATE).
func review(tb testing.TB, op admissionv1.Operation, gvk metav1.GroupVersionKind, obj, old metav1.Object) []byte {
	tb.Helper()
	req := &admissionv1.AdmissionRequest{UID: "0f6e6b5c-1", Kind: gvk, Operation: op}
	for _, o := range []struct {
		obj metav1.Object
		raw *runtime.RawExtension
	}{{obj, &req.Object}, {old, &req.OldObject}} {
		if o.obj == nil || reflect.ValueOf(o.obj).IsNil() {
			continue
		}
		raw, err := json.Marshal(o.obj)
		require.NoError(tb, err)
		o.raw.Raw = raw
		req.Namespace, req.Name = o.obj.GetNamespace(), o.obj.GetName()
	}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	})
	require.NoError(tb, err)
	return body
}

// handlers returns the webhooks over a lookup of objs, with the default
// policy, as the server registers them (Handlers.Webhooks).
func handlers(tb testing.TB, objs ...runtime.Object) map[string]http.Handler {
	tb.Helper()
	out := map[string]http.Handler{}
	for path, wh := range newHandlers(tb, objs...).Webhooks() {
		out[path] = wh
	}
	return out
}

// newHandlers returns Handlers over a lookup of objs, with the default
// policy.
func newHandlers(tb testing.TB, objs ...runtime.Object) *webhook.Handlers {
	tb.Helper()
	e, err := rules.New(engine.DefaultConfig())
	require.NoError(tb, err)
	lk := lookuptest.MustObjects(objs...)
	return &webhook.Handlers{
		Engine: func() *engine.Engine { return e },
		Lookup: func() engine.Lookup { return lk },
	}
}

// serve posts body to h and returns the decoded response.
func serve(tb testing.TB, h http.Handler, body []byte) *admissionv1.AdmissionResponse {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
		tb.Fatalf("bad response %q: %v", rec.Body.String(), err)
	}
	return out.Response
}

// answer posts body to h and checks the status code only: what the
// benchmarks time. (serve also decodes the response, the test's own work,
// which was about a tenth of BenchmarkValidatingReview.) Each benchmark
// checks the decoded answer once with serve before it starts timing.
func answer(tb testing.TB, h http.Handler, body []byte) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		tb.Fatalf("HTTP %d: %s", rec.Code, rec.Body.String())
	}
}

// cassandraFixture is the seed Cassandra StatefulSet (defaulted) and what
// it references: its headless Service and its expandable StorageClass.
func cassandraFixture(tb testing.TB) (*appsv1.StatefulSet, []runtime.Object) {
	sts := seedStatefulSet(tb, "cassandra")
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: sts.Namespace, Name: "cassandra"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "cassandra"}}}
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fast-ssd"}, Provisioner: "example.com/csi", AllowVolumeExpansion: ptr.To(true)}
	return sts, []runtime.Object{svc, sc}
}

// The seed Cassandra manifest has no readinessProbe: the one warning every
// review of it gets.
const cassandraWarnings = 1
