package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/stsguard/stsguard/webhook"
)

// post sends body to h as the apiserver does (or with contentType) and
// returns the recorded answer.
func post(h http.Handler, path string, body io.Reader, contentType string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, path, body)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	h.ServeHTTP(rec, r)
	return rec
}

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// Serve answers every request exactly as controller-runtime's
// Webhook.ServeHTTP does: status, headers and body bytes, for reviews of
// every path and for every kind of bad request.
func TestServeAnswersAsControllerRuntime(t *testing.T) {
	sts, objs := cassandraFixture(t)
	denied := sts.DeepCopy()
	denied.Spec.ServiceName = "missing"
	grace := sts.DeepCopy()
	grace.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
	stsGVK := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
	svc := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cassandra"}, Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.1"}}

	v1beta1 := strings.Replace(string(reviewBody(t, sts)), `"apiVersion":"admission.k8s.io/v1"`, `"apiVersion":"admission.k8s.io/v1beta1"`, 1)
	bodies := map[string]string{
		"create":               string(reviewBody(t, sts)),
		"create denied":        string(reviewBody(t, denied)),
		"create patched":       string(reviewBody(t, grace)),
		"update":               string(review(t, admissionv1.Update, stsGVK, grace, sts)),
		"delete":               string(review(t, admissionv1.Delete, serviceGVK, nil, svc)),
		"connect":              string(review(t, admissionv1.Connect, stsGVK, nil, nil)),
		"v1beta1":              v1beta1,
		"wrong kind for path":  string(review(t, admissionv1.Create, serviceGVK, svc, nil)),
		"no object":            `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"CREATE","kind":{"group":"apps","version":"v1","kind":"StatefulSet"}}}`,
		"not json":             `not json`,
		"truncated":            string(reviewBody(t, sts))[:100],
		"empty object":         `{}`,
		"request null":         `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`,
		"request a number":     `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":5}`,
		"no apiVersion":        `{"kind":"AdmissionReview","request":{"uid":"1"}}`,
		"no kind":              `{"apiVersion":"admission.k8s.io/v1","request":{"uid":"1"}}`,
		"capitalized keys":     `{"ApiVersion":"admission.k8s.io/v1","KIND":"AdmissionReview","request":{"uid":"1"}}`,
		"apiVersion unparsed":  `{"apiVersion":"a/b/c","kind":"AdmissionReview","request":{"uid":"1"}}`,
		"apiVersion a number":  `{"apiVersion":5,"kind":"AdmissionReview","request":{"uid":"1"}}`,
		"other kind":           `{"apiVersion":"example.com/v9","kind":"Other","request":{"uid":"1"}}`,
		"trailing garbage":     string(reviewBody(t, sts)) + `x`,
		"trailing whitespace":  string(reviewBody(t, sts)) + "\n",
		"duplicate request":    `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1"},"request":{"uid":"2"}}`,
		"request then null":    `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1"},"request":null}`,
		"response in request":  `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"9","allowed":true}}`,
		"case-variant request": `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","Request":{"uid":"1"}}`,
		"empty":                ``,
	}
	for _, path := range []string{webhook.ValidateStatefulSetPath, webhook.MutateStatefulSetPath, webhook.ValidateServicePath} {
		want, got := controllerRuntime(t, objs...), handlers(t, objs...)
		for name, body := range bodies {
			t.Run(path+"/"+name, func(t *testing.T) { sameAnswer(t, want[path], got[path], path, body) })
		}
		t.Run(path+"/content types", func(t *testing.T) {
			for _, ct := range []string{"", "text/plain", "application/json; charset=utf-8"} {
				a := post(want[path], path, strings.NewReader(bodies["create"]), ct)
				b := post(got[path], path, strings.NewReader(bodies["create"]), ct)
				assert.Equal(t, a.Code, b.Code)
				assert.Equal(t, a.Body.String(), b.Body.String())
				assert.Contains(t, b.Body.String(), "expected application/json")
			}
		})
		t.Run(path+"/no body", func(t *testing.T) {
			a := post(want[path], path, http.NoBody, "application/json")
			b := post(got[path], path, http.NoBody, "application/json")
			assert.Equal(t, a.Body.String(), b.Body.String())
			assert.Contains(t, b.Body.String(), "request body is empty")
		})
		t.Run(path+"/body read error", func(t *testing.T) {
			err := errors.New("connection reset")
			a := post(want[path], path, &failingReader{data: []byte(bodies["create"]), err: err}, "application/json")
			b := post(got[path], path, &failingReader{data: []byte(bodies["create"]), err: err}, "application/json")
			assert.Equal(t, a.Body.String(), b.Body.String())
			assert.Contains(t, b.Body.String(), "connection reset")
		})
		t.Run(path+"/body over the limit", func(t *testing.T) {
			big := bytes.Repeat([]byte(" "), 7<<20)
			a := post(want[path], path, io.MultiReader(strings.NewReader(bodies["create"]), bytes.NewReader(big)), "application/json")
			b := post(got[path], path, io.MultiReader(strings.NewReader(bodies["create"]), bytes.NewReader(big)), "application/json")
			assert.Equal(t, a.Code, b.Code)
			assert.Equal(t, a.Body.String(), b.Body.String())
			assert.Contains(t, b.Body.String(), "request entity is too large")
		})
	}
}

// The one documented difference: with both "kind" and "Kind" in the body,
// Serve types the response with "kind" (the apiserver sends only that
// key); controller-runtime's case-insensitive first pass takes the last.
// That the answers differ here also shows that Serve decoded the body
// itself rather than handing it to controller-runtime.
func TestServeTakesTheExactKeys(t *testing.T) {
	sts, objs := cassandraFixture(t)
	body := strings.Replace(string(reviewBody(t, sts)), `"kind":"AdmissionReview"`, `"kind":"AdmissionReview","Kind":"Other"`, 1)
	path := webhook.ValidateStatefulSetPath
	a := post(controllerRuntime(t, objs...)[path], path, strings.NewReader(body), "application/json")
	b := post(handlers(t, objs...)[path], path, strings.NewReader(body), "application/json")
	assert.Contains(t, a.Body.String(), `"kind":"Other"`)
	assert.Contains(t, b.Body.String(), `"kind":"AdmissionReview"`)
	assert.Equal(t, strings.Replace(a.Body.String(), `"kind":"Other"`, `"kind":"AdmissionReview"`, 1), b.Body.String())
}

// lines is a logger that records each line it writes.
func lines(out *[]string) logr.Logger {
	return funcr.New(func(prefix, args string) { *out = append(*out, prefix+" "+args) }, funcr.Options{Verbosity: 1})
}

// countingSink counts WithValues calls of the sink under it.
type countingSink struct {
	logr.LogSink
	withValues *int
}

func (c countingSink) WithValues(kv ...any) logr.LogSink {
	*c.withValues++
	return countingSink{c.LogSink.WithValues(kv...), c.withValues}
}

func (c countingSink) WithName(name string) logr.LogSink {
	return countingSink{c.LogSink.WithName(name), c.withValues}
}

// LazyLogConstructor's logger writes what DefaultLogConstructor's does,
// and adds the request's values only when a line is written.
func TestLazyLogConstructor(t *testing.T) {
	req := &admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "u-1", Namespace: "ns", Name: "web",
		Resource: metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"},
		UserInfo: authenticationv1.UserInfo{Username: "alice"},
	}}
	use := func(l logr.Logger) {
		l.Info("denied", "rules", "a,b", "dryRun", false)
		l.V(1).Info("verbose")
		l.V(2).Info("too verbose")
		l.Error(errors.New("boom"), "rule could not be evaluated", "rule", "x")
		l.WithValues("k", "v").Info("with values")
		l.WithName("sub").Info("with name")
		l.WithValues().Info("with no values")
	}
	for _, r := range []*admission.Request{req, nil} {
		var want, got []string
		use(admission.DefaultLogConstructor(lines(&want).WithName("admission"), r))
		use(webhook.LazyLogConstructor(lines(&got).WithName("admission"), r))
		assert.Equal(t, want, got)
		require.Len(t, got, 6)
	}

	n := 0
	base := logr.New(countingSink{funcr.New(func(string, string) {}, funcr.Options{}).GetSink(), &n})
	l := webhook.LazyLogConstructor(base, req)
	l.V(5).Info("received request")
	l = logf.FromContext(logr.NewContext(context.Background(), l)) // WithValues() of nothing
	assert.Zero(t, n, "nothing logged, no values added")
	l.Info("one")
	l.Info("two")
	assert.Equal(t, 1, n, "the values are added once")
}

// sameAnswer posts body as JSON to want (controller-runtime's serving) and
// to got (stsguard's) at path and asserts the same status, headers and
// body.
func sameAnswer(t *testing.T, want, got http.Handler, path, body string) {
	t.Helper()
	a := post(want, path, strings.NewReader(body), "application/json")
	b := post(got, path, strings.NewReader(body), "application/json")
	assert.Equal(t, a.Code, b.Code)
	assert.Equal(t, a.Header(), b.Header())
	assert.Equal(t, a.Body.String(), b.Body.String())
}

// controllerRuntime returns the webhooks over a lookup of objs, served by
// controller-runtime's Webhook.ServeHTTP, as before Serve.
func controllerRuntime(tb testing.TB, objs ...runtime.Object) map[string]http.Handler {
	tb.Helper()
	out := map[string]http.Handler{}
	for path, wh := range newHandlers(tb, objs...).Webhooks() {
		out[path] = wh
	}
	return out
}

// FuzzServeAnswersAsControllerRuntime posts arbitrary bodies to Serve and
// to controller-runtime's ServeHTTP: the answers must be the same bytes,
// except for the one documented difference (a body whose apiVersion or
// kind reads differently with case-insensitive keys, see
// TestServeTakesTheExactKeys).
func FuzzServeAnswersAsControllerRuntime(f *testing.F) {
	sts, objs := cassandraFixture(f)
	f.Add(reviewBody(f, sts))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"UPDATE"}}`))
	f.Add([]byte(`{"apiVersion":"a/b/c","kind":"AdmissionReview"}`))
	f.Add([]byte(`{"Kind":"AdmissionReview","request":null}`))
	path := webhook.ValidateStatefulSetPath
	want, got := controllerRuntime(f, objs...)[path], handlers(f, objs...)[path]
	f.Fuzz(func(t *testing.T, body []byte) {
		var exact, folded struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if sigsjson.UnmarshalCaseSensitivePreserveInts(body, &exact) == nil && json.Unmarshal(body, &folded) == nil && exact != folded {
			t.Skip("keys that differ only in case: the documented difference")
		}
		a := post(want, path, bytes.NewReader(body), "application/json")
		b := post(got, path, bytes.NewReader(body), "application/json")
		if a.Code != b.Code || a.Body.String() != b.Body.String() {
			t.Fatalf("body %q:\ncontroller-runtime: %d %s\nServe:              %d %s", body, a.Code, a.Body.String(), b.Code, b.Body.String())
		}
	})
}
