// Package reports renders stsguard's findings about existing objects as
// policy reports, one per namespace, and keeps that report in the cluster:
// a wgpolicyk8s.io/v1alpha2 PolicyReport (the API Kyverno, Policy
// Reporter, Kubescape and Trivy use) or an openreports.io/v1alpha1 Report.
// Results are bounded (MaxResults per report, the rest counted) and the
// report is written only when its content changes.
package reports
