package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/stsguard/stsguard/webhook"
)

// Bodies that are not a usable AdmissionReview get HTTP 400, or a response
// with allowed false and a status saying what was wrong; never a panic (a
// panic would surface as a 500 or a dropped connection).
func TestBadRequestBodies(t *testing.T) {
	hc := webhookClient(t)
	review := func(kind, object string) string {
		return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",` +
			`"kind":` + kind + `,"resource":{"group":"apps","version":"v1","resource":"statefulsets"},` +
			`"namespace":"default","operation":"CREATE"` + object + `}}`
	}
	stsKind := `{"group":"apps","version":"v1","kind":"StatefulSet"}`
	cases := []struct {
		name        string
		contentType string
		body        string
		wantHTTP    int
		wantMessage string
	}{
		{"empty body", "application/json", "", http.StatusOK, "request body is empty"},
		{"not JSON", "application/json", "hello", http.StatusOK, "couldn't get version/kind"},
		{"wrong content type", "text/plain", review(stsKind, `,"object":{}`), http.StatusOK, "expected application/json"},
		{"not an AdmissionReview", "application/json", `{"apiVersion":"v1","kind":"Pod"}`, http.StatusOK, ""},
		{"wrong kind", "application/json", review(`{"group":"","version":"v1","kind":"Service"}`, `,"object":{"apiVersion":"v1","kind":"Service"}`), http.StatusOK, "admits apps/v1 StatefulSet, not v1 Service"},
		{"missing object", "application/json", review(stsKind, ""), http.StatusOK, "request.object is empty"},
		{"object of the wrong type", "application/json", review(stsKind, `,"object":{"apiVersion":"v1","kind":"Service","spec":{"ports":"x"}}`), http.StatusOK, "not a valid apps/v1 StatefulSet"},
		{"malformed object", "application/json", review(stsKind, `,"object":{"apiVersion":"apps/v1","kind":"StatefulSet","spec":{"replicas":"three"}}`), http.StatusOK, "not a valid apps/v1 StatefulSet"},
	}
	errorsBefore := srv.Metric(t, "stsguard_admission_errors_total", map[string]string{"kind": "StatefulSet", "reason": "bad-request"})
	for _, path := range []string{webhook.MutateStatefulSetPath, webhook.ValidateStatefulSetPath} {
		for _, tc := range cases {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				resp, err := hc.Post(webhookURL(path), tc.contentType, bytes.NewBufferString(tc.body))
				require.NoError(t, err)
				defer resp.Body.Close()
				raw, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				require.Equal(t, tc.wantHTTP, resp.StatusCode, "body: %s", raw)
				var out admissionv1.AdmissionReview
				require.NoError(t, json.Unmarshal(raw, &out), "body: %s", raw)
				require.NotNil(t, out.Response, "body: %s", raw)
				assert.False(t, out.Response.Allowed)
				require.NotNil(t, out.Response.Result)
				assert.GreaterOrEqual(t, out.Response.Result.Code, int32(400))
				assert.Less(t, out.Response.Result.Code, int32(500), "a bad request is the caller's error: %s", out.Response.Result.Message)
				assert.Contains(t, out.Response.Result.Message, tc.wantMessage)
			})
		}
	}
	// The bodies controller-runtime could read as an AdmissionReview reached
	// stsguard, which counted each as an error: 5 cases on 2 paths.
	assert.Equal(t, errorsBefore+10, srv.Metric(t, "stsguard_admission_errors_total", map[string]string{"kind": "StatefulSet", "reason": "bad-request"}))
}

func TestProbesAndMetrics(t *testing.T) {
	for _, url := range []string{"http://" + srv.ProbeAddr + "/healthz", "http://" + srv.ProbeAddr + "/readyz", "http://" + srv.MetricsAddr + "/metrics"} {
		resp, err := http.Get(url)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", url, body)
		if url == "http://"+srv.MetricsAddr+"/metrics" {
			assert.Contains(t, string(body), `controller_runtime_webhook_requests_total{code="200",webhook="/validate-apps-v1-statefulset"}`)
			assert.Regexp(t, `\nstsguard_certificate_expiry_timestamp_seconds\{certificate="serving"\} \d\.\d+e\+09\n`, string(body))
		}
	}
}
