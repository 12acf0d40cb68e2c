// Package v1alpha2 holds the Go types of the wgpolicyk8s.io/v1alpha2
// PolicyReport API of the Kubernetes Policy Working Group
// (kubernetes-sigs/wg-policy-prototypes, policy-report/crd/v1alpha2), which
// Kyverno, Policy Reporter, Kubescape and Trivy read and write. No module on
// the Go module proxy serves them, so they are written here to the
// CustomResourceDefinition's schema: the objects, with their result and
// summary taken from github.com/openreports/reports-api's
// openreports.io/v1alpha1, the API's successor, whose ReportResult and
// ReportSummary have the same JSON schema. The deep copies are generated
// (make generate).
//
// +kubebuilder:object:generate=true
// +groupName=wgpolicyk8s.io
package v1alpha2
