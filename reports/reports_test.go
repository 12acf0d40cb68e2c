package reports

import (
	"testing"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stsguard/stsguard/audit"
	"github.com/stsguard/stsguard/engine"
)

func TestResults(t *testing.T) {
	subj := Subject{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "db", Name: "web", UID: "u1"}
	since := metav1.Unix(1700000000, 0)
	ref := []corev1.ObjectReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "db", Name: "web", UID: "u1"}}
	result := func(rule string, res openreportsv1alpha1.Result, sev openreportsv1alpha1.ResultSeverity, action, field, msg string) openreportsv1alpha1.ReportResult {
		return openreportsv1alpha1.ReportResult{Source: "stsguard", Policy: "stsguard", Rule: rule, Result: res, Severity: sev,
			Timestamp: metav1.Timestamp{Seconds: 1700000000}, Subjects: ref, Description: msg,
			Properties: map[string]string{"field": field, "action": action}}
	}
	cases := []struct {
		name     string
		findings []audit.Finding
		want     []openreportsv1alpha1.ReportResult
	}{
		{"none", nil, nil},
		{"deny is fail, high", []audit.Finding{{Rule: "headless-service-not-headless", Action: engine.Deny, Field: "spec.serviceName", Message: "names a ClusterIP Service"}},
			[]openreportsv1alpha1.ReportResult{result("headless-service-not-headless", "fail", "high", "Deny", "spec.serviceName", "names a ClusterIP Service")}},
		{"warn is warn, medium", []audit.Finding{{Rule: "readiness-probe-missing", Action: engine.Warn, Field: "spec.template.spec.containers[0]", Message: "m"}},
			[]openreportsv1alpha1.ReportResult{result("readiness-probe-missing", "warn", "medium", "Warn", "spec.template.spec.containers[0]", "m")}},
		{"audit is warn, low", []audit.Finding{{Rule: "weak-password", Action: engine.Audit, Field: "data[password]", Message: "m"}},
			[]openreportsv1alpha1.ReportResult{result("weak-password", "warn", "low", "Audit", "data[password]", "m")}},
		{"a mutation is no result", []audit.Finding{{Rule: "termination-grace-period", Action: engine.Mutate}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Results(subj, tc.findings, since))
		})
	}
}

func TestSortAndSummarize(t *testing.T) {
	r := func(kind, name, rule string, res openreportsv1alpha1.Result) openreportsv1alpha1.ReportResult {
		return openreportsv1alpha1.ReportResult{Rule: rule, Result: res, Subjects: []corev1.ObjectReference{{Kind: kind, Name: name}},
			Properties: map[string]string{"field": "spec"}}
	}
	cases := []struct {
		name    string
		in      []openreportsv1alpha1.ReportResult
		want    []openreportsv1alpha1.ReportResult
		summary openreportsv1alpha1.ReportSummary
	}{
		{"empty", nil, nil, openreportsv1alpha1.ReportSummary{}},
		{"failures first, then by kind, name and rule",
			[]openreportsv1alpha1.ReportResult{r("StatefulSet", "b", "x", "warn"), r("Service", "z", "y", "fail"), r("StatefulSet", "a", "y", "warn"), r("StatefulSet", "a", "x", "warn"), r("Secret", "s", "x", "error")},
			[]openreportsv1alpha1.ReportResult{r("Service", "z", "y", "fail"), r("Secret", "s", "x", "error"), r("StatefulSet", "a", "x", "warn"), r("StatefulSet", "a", "y", "warn"), r("StatefulSet", "b", "x", "warn")},
			openreportsv1alpha1.ReportSummary{Fail: 1, Error: 1, Warn: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			Sort(tc.in)
			assert.Equal(t, tc.want, tc.in)
			assert.Equal(t, tc.summary, Summarize(tc.in))
		})
	}
}
