package v1alpha2

import (
	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// SchemeGroupVersion is wgpolicyk8s.io/v1alpha2.
var SchemeGroupVersion = schema.GroupVersion{Group: "wgpolicyk8s.io", Version: "v1alpha2"}

// AddToScheme registers PolicyReport and PolicyReportList in a scheme.
// ClusterPolicyReport is not here: stsguard judges namespaced objects only.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion, &PolicyReport{}, &PolicyReportList{})
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}

// PolicyReportResult is one result of a report: the policy and rule, pass,
// fail, warn, error or skip, its severity, message, the resources it is
// about and free-form properties (the CRD's PolicyReportResult).
type PolicyReportResult = openreportsv1alpha1.ReportResult

// PolicyReportSummary counts a report's results by result (the CRD's
// PolicyReportSummary).
type PolicyReportSummary = openreportsv1alpha1.ReportSummary

// Result values and severities the CRD accepts.
const (
	StatusPass  openreportsv1alpha1.Result = "pass"
	StatusFail  openreportsv1alpha1.Result = "fail"
	StatusWarn  openreportsv1alpha1.Result = "warn"
	StatusError openreportsv1alpha1.Result = "error"
	StatusSkip  openreportsv1alpha1.Result = "skip"

	SeverityCritical openreportsv1alpha1.ResultSeverity = "critical"
	SeverityHigh     openreportsv1alpha1.ResultSeverity = "high"
	SeverityMedium   openreportsv1alpha1.ResultSeverity = "medium"
	SeverityLow      openreportsv1alpha1.ResultSeverity = "low"
	SeverityInfo     openreportsv1alpha1.ResultSeverity = "info"
)

// PolicyReport holds the results of policies for the objects of one
// namespace.
//
// +kubebuilder:object:root=true
type PolicyReport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Scope is the object the report is about, if one.
	Scope *corev1.ObjectReference `json:"scope,omitempty"`
	// ScopeSelector selects the objects the report is about, if it is.
	ScopeSelector *metav1.LabelSelector `json:"scopeSelector,omitempty"`
	// Summary counts Results by result.
	Summary PolicyReportSummary `json:"summary,omitempty"`
	// Results are the results.
	Results []PolicyReportResult `json:"results,omitempty"`
}

// PolicyReportList is a list of PolicyReports.
//
// +kubebuilder:object:root=true
type PolicyReportList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PolicyReport `json:"items"`
}
