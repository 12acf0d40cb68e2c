package webhook_test

import (
	"fmt"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/webhook"
)

// BenchmarkValidatingReview is one Cassandra StatefulSet CREATE (the seed
// manifest, defaulted) through the validating handler: decode, every rule
// against the lookup, encode.
func BenchmarkValidatingReview(b *testing.B) {
	sts, objs := cassandraFixture(b)
	h := handlers(b, objs...)[webhook.ValidateStatefulSetPath]
	body := reviewBody(b, sts)
	if r := serve(b, h, body); !r.Allowed || len(r.Warnings) != cassandraWarnings {
		b.Fatalf("unexpected response: %+v", r)
	}
	b.ReportAllocs()
	for b.Loop() {
		answer(b, h, body)
	}
}

// BenchmarkMutatingReview is the same request through the mutating handler,
// with the grace period at the API default so that a patch is built; the
// mutated object is validated too.
func BenchmarkMutatingReview(b *testing.B) {
	sts, objs := cassandraFixture(b)
	sts.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
	h := handlers(b, objs...)[webhook.MutateStatefulSetPath]
	body := reviewBody(b, sts)
	if r := serve(b, h, body); !r.Allowed || len(r.Patch) == 0 {
		b.Fatalf("expected a patch: %+v", r)
	}
	b.ReportAllocs()
	for b.Loop() {
		answer(b, h, body)
	}
}

// BenchmarkMutatingReviewCredentials is the seed MySQL StatefulSet with a
// plaintext password (made strong: the seed's "password" is denied), where
// the Secret already holds the value (reuse: the common case on every
// re-apply; no write).
func BenchmarkMutatingReviewCredentials(b *testing.B) {
	sts := seedStatefulSet(b, "mysql-plaintext-password")
	const pw = "n0t-the-seed-password"
	sts.Spec.Template.Spec.Containers[0].Env[0].Value = pw
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "mysql"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "mysql"}}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "mysql-credentials"},
		Data: map[string][]byte{"mysql-root-password": []byte(pw)}}
	h := handlers(b, svc, secret)[webhook.MutateStatefulSetPath]
	body := reviewBody(b, sts)
	if r := serve(b, h, body); !r.Allowed || len(r.Patch) == 0 {
		b.Fatalf("expected a patch: %+v", r)
	}
	b.ReportAllocs()
	for b.Loop() {
		answer(b, h, body)
	}
}

// BenchmarkValidatingSecretReview is a Secret UPDATE in a namespace of 50
// StatefulSets, one of which reads the Secret's password.
func BenchmarkValidatingSecretReview(b *testing.B) {
	objs := []runtime.Object{}
	for i := range 50 {
		sts, _ := cassandraFixture(b)
		sts.Name = fmt.Sprintf("cassandra-%d", i)
		objs = append(objs, sts)
	}
	user := seedStatefulSet(b, "mysql-secret-ref")
	user.Namespace = "databases"
	objs = append(objs, user)
	ref := user.Spec.Template.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef
	old := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "databases", Name: ref.Name},
		Data:       map[string][]byte{ref.Key: []byte("n0t-a-default-9"), "other": []byte("x")}}
	updated := old.DeepCopy()
	updated.Labels = map[string]string{"team": "db"}
	h := handlers(b, objs...)[webhook.ValidateSecretPath]
	body := review(b, admissionv1.Update, metav1.GroupVersionKind{Version: "v1", Kind: "Secret"}, updated, old)
	if r := serve(b, h, body); !r.Allowed || len(r.Warnings) != 0 {
		b.Fatalf("unexpected response: %+v", r)
	}
	b.ReportAllocs()
	for b.Loop() {
		answer(b, h, body)
	}
}
