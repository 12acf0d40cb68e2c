package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/stsguard/stsguard/webhook"
	"github.com/stsguard/stsguard/webhook/rules"
)

// indexReader is a client.Reader over a client-go indexer, the store behind
// controller-runtime's informer cache, returning objects without a deep
// copy as the server's cache is configured to.
type indexReader struct {
	client.Reader
	store cache.Indexer
}

func (r indexReader) Get(_ context.Context, key client.ObjectKey, out client.Object, _ ...client.GetOption) error {
	obj, ok, err := r.store.GetByKey(key.Namespace + "/" + key.Name)
	if err != nil {
		return err
	}
	if ok {
		switch o := out.(type) {
		case *corev1.Service:
			if s, isSvc := obj.(*corev1.Service); isSvc {
				*o = *s
				return nil
			}
		case *corev1.Secret:
			if s, isSecret := obj.(*corev1.Secret); isSecret {
				*o = *s
				return nil
			}
		}
	}
	return apierrors.NewNotFound(corev1.Resource(fmt.Sprintf("%T", out)), key.Name)
}

func kindStore(objs []client.Object) cache.Indexer {
	store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, o := range objs {
		_ = store.Add(o)
	}
	return store
}

// seedStatefulSet loads a StatefulSet from examples/ and applies the API
// defaults the apiserver applies before admission.
func seedStatefulSet(tb testing.TB, example string) *appsv1.StatefulSet {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "examples", example, "*.yaml"))
	require.NoError(tb, err)
	require.NotEmpty(tb, files)
	data, err := os.ReadFile(files[0])
	require.NoError(tb, err)
	codecs := serializer.NewCodecFactory(clientgoscheme.Scheme)
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		obj, _, err := codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			continue
		}
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
	tb.Helper()
	raw, err := json.Marshal(sts)
	require.NoError(tb, err)
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "0f6e6b5c-1",
			Kind:      metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"},
			Resource:  metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"},
			Namespace: sts.Namespace, Name: sts.Name,
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	})
	require.NoError(tb, err)
	return body
}

func handlers(reader client.Reader) *webhook.StatefulSets {
	return webhook.NewStatefulSets(rules.New(rules.DefaultConfig()), reader, nil)
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

func cassandraFixture(tb testing.TB) (*appsv1.StatefulSet, indexReader) {
	sts := seedStatefulSet(tb, "cassandra")
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: sts.Namespace, Name: "cassandra"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "cassandra"}}}
	return sts, indexReader{store: kindStore([]client.Object{svc})}
}

// BenchmarkValidatingReview is one Cassandra StatefulSet CREATE (the seed
// manifest, defaulted) through the validating handler: decode, every rule
// against the cache, encode.
func BenchmarkValidatingReview(b *testing.B) {
	sts, reader := cassandraFixture(b)
	h := &admission.Webhook{Handler: handlers(reader).Validating()}
	body := reviewBody(b, sts)
	if r := serve(b, h, body); !r.Allowed || len(r.Warnings) != 0 {
		b.Fatalf("unexpected response: %+v", r)
	}
	b.ReportAllocs()
	for b.Loop() {
		serve(b, h, body)
	}
}

// BenchmarkMutatingReview is the same request through the mutating handler,
// with the grace period at the API default so that a patch is built.
func BenchmarkMutatingReview(b *testing.B) {
	sts, reader := cassandraFixture(b)
	sts.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
	h := &admission.Webhook{Handler: handlers(reader).Mutating()}
	body := reviewBody(b, sts)
	if r := serve(b, h, body); !r.Allowed || len(r.Patch) == 0 {
		b.Fatalf("expected a patch: %+v", r)
	}
	b.ReportAllocs()
	for b.Loop() {
		serve(b, h, body)
	}
}

// BenchmarkMutatingReviewCredentials is the seed MySQL StatefulSet with its
// plaintext password, where the Secret already holds the value (reuse: the
// common case on every re-apply; no write).
func BenchmarkMutatingReviewCredentials(b *testing.B) {
	sts := seedStatefulSet(b, "mysql-plaintext-password")
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "mysql"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "mysql"}}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "mysql-credentials"},
		Data: map[string][]byte{"mysql-root-password": []byte("password")}}
	reader := indexReader{store: kindStore([]client.Object{svc})}
	secrets := kindStore([]client.Object{secret})
	h := &admission.Webhook{Handler: handlers(splitReader{svc: reader, secrets: indexReader{store: secrets}}).Mutating()}
	body := reviewBody(b, sts)
	if r := serve(b, h, body); !r.Allowed || len(r.Patch) == 0 {
		b.Fatalf("expected a patch: %+v", r)
	}
	b.ReportAllocs()
	for b.Loop() {
		serve(b, h, body)
	}
}

// splitReader serves Services and Secrets from separate stores, as the
// informer cache does with one informer per kind.
type splitReader struct {
	client.Reader
	svc, secrets indexReader
}

func (r splitReader) Get(ctx context.Context, key client.ObjectKey, out client.Object, opts ...client.GetOption) error {
	if _, ok := out.(*corev1.Secret); ok {
		return r.secrets.Get(ctx, key, out, opts...)
	}
	return r.svc.Get(ctx, key, out, opts...)
}
