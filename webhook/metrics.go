package webhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/promutil"
	"github.com/stsguard/stsguard/kinds"
)

// Metrics are stsguard's Prometheus metrics, beside controller-runtime's
// controller_runtime_webhook_* ones. Every method is safe on a nil *Metrics.
type Metrics struct {
	findings   *prometheus.CounterVec
	mutations  *prometheus.CounterVec
	exemptions *prometheus.CounterVec
	errors     *prometheus.CounterVec
	evaluation *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them with reg (in the server,
// controller-runtime's metrics.Registry, served on /metrics), reusing them
// when they are registered already. It returns an error when another
// collector holds one of the names.
//
//   - stsguard_findings_total{rule,action,kind,operation}: findings that
//     reached a decision (Deny, Warn or Audit), dry runs included.
//   - stsguard_mutations_total{rule}: changes made by mutators on requests
//     that were not dry runs.
//   - stsguard_exemptions_total{rule}: exemptions that suppressed a rule.
//   - stsguard_evaluation_duration_seconds{kind,operation,webhook}: time from
//     the decoded request to the response, in seconds.
//   - stsguard_admission_errors_total{kind,reason}: requests on which
//     stsguard failed: reason "bad-request" (a body stsguard could not
//     read, answered with an error), "secret-write" (password-secret-ref
//     could not write its Secret within the deadline; the request was
//     admitted without the changes that rely on it, with a warning) or
//     "internal" (the engine refused a request the webhook decoded, a bug
//     of stsguard's; answered with an HTTP 500, which failurePolicy
//     decides).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stsguard_findings_total",
			Help: "Findings of stsguard rules that reached an admission decision, by rule, action (Deny, Warn, Audit), kind and operation.",
		}, []string{"rule", "action", "kind", "operation"}),
		mutations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stsguard_mutations_total",
			Help: "Changes made by stsguard mutators on admitted requests that were not dry runs, by rule.",
		}, []string{"rule"}),
		exemptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stsguard_exemptions_total",
			Help: "Exemptions (annotation or namespace) that suppressed a rule's findings or a mutator's changes, by rule.",
		}, []string{"rule"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stsguard_admission_errors_total",
			Help: "Admission requests on which stsguard failed, by kind and reason: bad-request (answered with an error), secret-write (a Secret password-secret-ref could not write; admitted without the changes that rely on it), internal (a bug of stsguard's; answered with an HTTP 500).",
		}, []string{"kind", "reason"}),
		evaluation: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stsguard_evaluation_duration_seconds",
			Help:    "Time stsguard took to decide one admission request, from decoded request to response, in seconds.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
		}, []string{"kind", "operation", "webhook"}),
	}
	var err error
	for _, c := range []**prometheus.CounterVec{&m.findings, &m.mutations, &m.exemptions, &m.errors} {
		if *c, err = promutil.Register(reg, *c); err != nil {
			return nil, err
		}
	}
	if m.evaluation, err = promutil.Register(reg, m.evaluation); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) finding(f engine.Finding, k kinds.Kind, op admissionv1.Operation) {
	if m == nil {
		return
	}
	m.findings.WithLabelValues(f.Rule, string(f.Action), string(k), string(op)).Inc()
}

func (m *Metrics) mutated(cs []engine.Change) {
	if m == nil {
		return
	}
	for _, c := range cs {
		m.mutations.WithLabelValues(c.Rule).Inc()
	}
}

func (m *Metrics) exempted(x engine.Exemption) {
	if m == nil {
		return
	}
	m.exemptions.WithLabelValues(x.Rule).Inc()
}

// Error reasons of stsguard_admission_errors_total.
const (
	reasonBadRequest  = "bad-request"
	reasonSecretWrite = "secret-write"
	// reasonInternal: the engine refused a request the webhook decoded (a
	// bug of stsguard's); answered with a 500.
	reasonInternal = "internal"
)

func (m *Metrics) errored(k kinds.Kind, reason string) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(string(k), reason).Inc()
}

func (m *Metrics) observe(k kinds.Kind, op admissionv1.Operation, webhook string, start time.Time) {
	if m == nil {
		return
	}
	m.evaluation.WithLabelValues(string(k), string(op), webhook).Observe(time.Since(start).Seconds())
}
