package webhook_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/lookuptest"
	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/webhook"
)

// FuzzAdmissionPaths posts arbitrary bodies, and AdmissionReviews carrying
// arbitrary objects, to every webhook path: stsguard must answer each with
// an AdmissionReview response (or controller-runtime's own error for a body
// that is not one), never with a 500 (which the apiserver takes as a denial
// whatever the failurePolicy), and never panic. `go test` runs the seed corpus; `make
// fuzz` runs it for longer.
func FuzzAdmissionPaths(f *testing.F) {
	sts, objs := cassandraFixture(f)
	f.Add(reviewBody(f, sts), "")
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"UPDATE"}}`), "")
	f.Add([]byte(`{}`), `{"kind":"Scale","apiVersion":"autoscaling/v1","spec":{"replicas":-1}}`)
	f.Add([]byte(`not json`), `{"kind":"StatefulSet","apiVersion":"apps/v1","spec":{"template":{"spec":{"containers":[{"env":[{"name":"X_PASSWORD","value":"a"}]}]}}}}`)
	e, err := rules.New(engine.DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	lk := lookuptest.MustObjects(objs...)
	h := (&webhook.Handlers{
		Engine:  func() *engine.Engine { return e },
		Lookup:  func() engine.Lookup { return lk },
		Secrets: fake.NewClientBuilder().Build(), // as in the server: password-secret-ref writes
	}).Webhooks()
	kinds := []metav1.GroupVersionKind{
		{Group: "apps", Version: "v1", Kind: "StatefulSet"}, {Version: "v1", Kind: "Service"},
		{Version: "v1", Kind: "Secret"}, {Group: "autoscaling", Version: "v1", Kind: "Scale"},
	}
	ops := []admissionv1.Operation{admissionv1.Create, admissionv1.Update, admissionv1.Delete, admissionv1.Connect}
	f.Fuzz(func(t *testing.T, body []byte, object string) {
		bodies := [][]byte{body}
		for i, k := range kinds {
			req := &admissionv1.AdmissionRequest{UID: "f", Kind: k, Operation: ops[(len(object)+i)%len(ops)], Namespace: "ns", Name: "x"}
			req.Object.Raw, req.OldObject.Raw = []byte(object), []byte(object)
			if k.Kind == "Scale" {
				req.SubResource = "scale"
			}
			b, err := json.Marshal(admissionv1.AdmissionReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req})
			if err == nil {
				bodies = append(bodies, b)
			}
		}
		for path, wh := range h {
			for _, b := range bodies {
				rec := httptest.NewRecorder()
				r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(b))
				r.Header.Set("Content-Type", "application/json")
				done := make(chan struct{})
				go func() { defer close(done); wh.ServeHTTP(rec, r) }()
				select {
				case <-done:
				case <-time.After(3 * time.Second): // the apiserver gives up after 5 s
					t.Fatalf("%s: no answer within 3 s to %q", path, b)
				}
				if rec.Code == http.StatusOK {
					var out admissionv1.AdmissionReview
					if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
						t.Fatalf("%s: a 200 without an AdmissionReview response: %q", path, rec.Body.String())
					}
					// controller-runtime recovers a panic into a 500 status:
					// stsguard must never need that.
					if out.Response.Result != nil && out.Response.Result.Code == http.StatusInternalServerError {
						t.Fatalf("%s: HTTP 500 (a panic, or an error stsguard should have answered): %s", path, out.Response.Result.Message)
					}
				}
			}
		}
	})
}
