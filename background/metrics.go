package background

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stsguard/stsguard/internal/promutil"
)

// Metrics are the background audit's Prometheus metrics. Only the replica
// that runs the audit (the Lease's holder) exports violations; the others
// export none, so that a sum over replicas counts each violation once.
//
//   - stsguard_violations{rule,action[,resource_namespace]}: findings about
//     existing StatefulSets, Services and Secrets, by rule and action (Deny,
//     Warn, Audit), and by the objects' namespace when Options.NamespaceLabel
//     is set (not "namespace", which Prometheus gives the scraped pod's).
//   - stsguard_background_audit_leader: 1 on the replica that runs the
//     audit, else 0.
//   - stsguard_background_audit_last_scan_duration_seconds: how long the
//     last full scan took, from its start until every object it queued was
//     judged.
//   - stsguard_background_audit_last_scan_timestamp_seconds: when it ended,
//     in Unix seconds (its age: time() - this).
//   - stsguard_background_audit_objects: objects judged and held.
//   - stsguard_background_audit_judgments_total: objects judged (each
//     re-judgment counts).
//   - stsguard_background_audit_report_writes_total{operation}: report
//     writes (create, update, delete).
type Metrics struct {
	violations    *prometheus.GaugeVec
	leader        prometheus.Gauge
	scanDuration  prometheus.Gauge
	scanTimestamp prometheus.Gauge
	objects       prometheus.Gauge
	judgments     prometheus.Counter
	writes        *prometheus.CounterVec
	namespaced    bool
}

// NewMetrics creates the metrics and registers them with reg, reusing
// those registered already (see promutil.Register). namespaced adds the
// resource_namespace label to stsguard_violations: one series per
// namespace, rule and action, which may be many.
func NewMetrics(reg prometheus.Registerer, namespaced bool) (*Metrics, error) {
	labels := []string{"rule", "action"}
	if namespaced {
		labels = append(labels, "resource_namespace")
	}
	m := &Metrics{
		violations: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stsguard_violations",
			Help: "Findings of stsguard rules about existing StatefulSets, Services and Secrets (the background audit), by rule and action (Deny, Warn, Audit).",
		}, labels),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stsguard_background_audit_leader",
			Help: "1 on the replica that runs the background audit (the holder of its Lease), else 0.",
		}),
		scanDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stsguard_background_audit_last_scan_duration_seconds",
			Help: "Duration of the background audit's last full scan, from its start until every object was judged, in seconds.",
		}),
		scanTimestamp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stsguard_background_audit_last_scan_timestamp_seconds",
			Help: "End of the background audit's last full scan, in Unix seconds.",
		}),
		objects: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stsguard_background_audit_objects",
			Help: "StatefulSets, Services and Secrets the background audit has judged and holds results for.",
		}),
		judgments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stsguard_background_audit_judgments_total",
			Help: "Objects judged by the background audit (each re-judgment counts).",
		}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stsguard_background_audit_report_writes_total",
			Help: "Policy report writes by the background audit, by operation (create, update, delete).",
		}, []string{"operation"}),
		namespaced: namespaced,
	}
	var err error
	if m.violations, err = promutil.Register(reg, m.violations); err != nil {
		return nil, err
	}
	for _, g := range []*prometheus.Gauge{&m.leader, &m.scanDuration, &m.scanTimestamp, &m.objects} {
		if *g, err = promutil.Register(reg, *g); err != nil {
			return nil, err
		}
	}
	if m.judgments, err = promutil.Register(reg, m.judgments); err != nil {
		return nil, err
	}
	if m.writes, err = promutil.Register(reg, m.writes); err != nil {
		return nil, err
	}
	return m, nil
}

// violation is one series of stsguard_violations.
type violation struct {
	rule, action, namespace string
}

// setViolations puts counts in force: every series of counts, and none
// other (a series whose count fell to zero is deleted).
func (m *Metrics) setViolations(counts map[violation]int, prev map[violation]int) {
	for v := range prev {
		if _, ok := counts[v]; !ok {
			m.violations.DeleteLabelValues(m.values(v)...)
		}
	}
	for v, n := range counts {
		m.violations.WithLabelValues(m.values(v)...).Set(float64(n))
	}
}

func (m *Metrics) values(v violation) []string {
	if m.namespaced {
		return []string{v.rule, v.action, v.namespace}
	}
	return []string{v.rule, v.action}
}

// stopped clears what only the running audit exports.
func (m *Metrics) stopped() {
	m.violations.Reset()
	m.leader.Set(0)
	m.objects.Set(0)
}
