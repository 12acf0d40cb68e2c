package background

import (
	"slices"
	"sync"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stsguard/stsguard/audit"
	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/reports"
)

// store holds the findings of every judged object that has some, by
// namespace, and their counts by rule, action and namespace. It is safe
// for concurrent use.
type store struct {
	mu      sync.Mutex
	byNS    map[string]map[key]*entry
	counts  map[violation]int
	present map[key]struct{}
}

// entry is one object's findings and their report results.
type entry struct {
	subject  reports.Subject
	findings []audit.Finding
	results  []openreportsv1alpha1.ReportResult
}

func newStore() *store {
	return &store{byNS: map[string]map[key]*entry{}, counts: map[violation]int{}, present: map[key]struct{}{}}
}

// reported keeps the findings a report and the metrics show: Deny, Warn
// and Audit (not Mutate, which the Validating phase has none of anyway).
func reported(fs []audit.Finding) []audit.Finding {
	return slices.DeleteFunc(slices.Clone(fs), func(f audit.Finding) bool {
		return f.Action != engine.Deny && f.Action != engine.Warn && f.Action != engine.Audit
	})
}

// sameFindings reports whether a and b say the same (sorted as audit
// sorts them).
func sameFindings(a, b []audit.Finding) bool {
	return slices.EqualFunc(a, b, func(x, y audit.Finding) bool {
		return x.Rule == y.Rule && x.Action == y.Action && x.Field == y.Field && x.Message == y.Message
	})
}

// put records the findings of object k (subject s), judged at now. It
// reports whether k's results changed.
func (s *store) put(k key, subj reports.Subject, findings []audit.Finding, now metav1.Time) bool {
	findings = reported(findings)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.present[k] = struct{}{}
	ns := s.byNS[k.Namespace]
	old := ns[k]
	if old != nil && old.subject == subj && sameFindings(old.findings, findings) {
		return false
	}
	if old == nil && len(findings) == 0 {
		return false
	}
	s.drop(k)
	if len(findings) == 0 {
		return true
	}
	ns = s.byNS[k.Namespace] // drop removes a namespace's map with its last entry
	if ns == nil {
		ns = map[key]*entry{}
		s.byNS[k.Namespace] = ns
	}
	e := &entry{subject: subj, findings: findings, results: reports.Results(subj, findings, now)}
	ns[k] = e
	s.count(k.Namespace, e, +1)
	return true
}

// remove forgets object k (deleted). It reports whether k had results.
func (s *store) remove(k key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.present, k)
	_, had := s.byNS[k.Namespace][k]
	s.drop(k)
	return had
}

// drop removes k's entry; s.mu is held.
func (s *store) drop(k key) {
	ns := s.byNS[k.Namespace]
	if e, ok := ns[k]; ok {
		s.count(k.Namespace, e, -1)
		delete(ns, k)
		if len(ns) == 0 {
			delete(s.byNS, k.Namespace)
		}
	}
}

func (s *store) count(namespace string, e *entry, delta int) {
	for _, f := range e.findings {
		v := violation{rule: f.Rule, action: string(f.Action), namespace: namespace}
		s.counts[v] += delta
		if s.counts[v] == 0 {
			delete(s.counts, v)
		}
	}
}

// results returns a copy of the results of namespace's objects.
func (s *store) results(namespace string) []openreportsv1alpha1.ReportResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []openreportsv1alpha1.ReportResult
	for _, e := range s.byNS[namespace] {
		out = append(out, e.results...)
	}
	return out
}

// violations returns the counts by rule and action, and by namespace when
// namespaced; and the number of objects judged.
func (s *store) violations(namespaced bool) (map[violation]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[violation]int, len(s.counts))
	for v, n := range s.counts {
		if !namespaced {
			v.namespace = ""
		}
		out[v] += n
	}
	return out, len(s.present)
}

// keys returns every object judged and present.
func (s *store) keys() []key {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]key, 0, len(s.present))
	for k := range s.present {
		out = append(out, k)
	}
	return out
}

// namespaces returns the namespaces with results.
func (s *store) namespaces() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.byNS))
	for ns := range s.byNS {
		out = append(out, ns)
	}
	return out
}
