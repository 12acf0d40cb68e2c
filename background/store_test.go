package background

import (
	"testing"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stsguard/stsguard/audit"
	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/kinds"
	"github.com/stsguard/stsguard/reports"
)

// The store reports a change only when an object's findings change, and
// keeps the counts of stsguard_violations in step.
func TestStore(t *testing.T) {
	web := key{kinds.StatefulSet, "db", "web"}
	svc := key{kinds.Service, "db", "web"}
	subj := func(k key, uid string) reports.Subject {
		return reports.Subject{APIVersion: "v1", Kind: string(k.Kind), Namespace: k.Namespace, Name: k.Name, UID: types.UID("u-" + uid)}
	}
	deny := audit.Finding{Rule: "headless-service-not-headless", Action: engine.Deny, Field: "spec.serviceName", Message: "m"}
	warn := audit.Finding{Rule: "readiness-probe-missing", Action: engine.Warn, Field: "spec", Message: "m"}
	mutate := audit.Finding{Rule: "termination-grace-period", Action: engine.Mutate}
	type step struct {
		do      func(*store) bool
		changed bool
		counts  map[violation]int
		results int // of namespace db
	}
	put := func(k key, uid string, fs ...audit.Finding) func(*store) bool {
		return func(s *store) bool { return s.put(k, subj(k, uid), fs, metav1.Unix(1, 0)) }
	}
	remove := func(k key) func(*store) bool { return func(s *store) bool { return s.remove(k) } }
	steps := []step{
		{put(web, "1"), false, map[violation]int{}, 0},
		{put(web, "1", deny, warn), true, map[violation]int{{deny.Rule, "Deny", "db"}: 1, {warn.Rule, "Warn", "db"}: 1}, 2},
		{put(web, "1", deny, warn), false, map[violation]int{{deny.Rule, "Deny", "db"}: 1, {warn.Rule, "Warn", "db"}: 1}, 2},
		{put(svc, "2", deny, mutate), true, map[violation]int{{deny.Rule, "Deny", "db"}: 2, {warn.Rule, "Warn", "db"}: 1}, 3},
		{put(web, "3", deny, warn), true, map[violation]int{{deny.Rule, "Deny", "db"}: 2, {warn.Rule, "Warn", "db"}: 1}, 3}, // re-created
		{put(web, "3", warn), true, map[violation]int{{deny.Rule, "Deny", "db"}: 1, {warn.Rule, "Warn", "db"}: 1}, 2},
		{remove(svc), true, map[violation]int{{warn.Rule, "Warn", "db"}: 1}, 1},
		{remove(svc), false, map[violation]int{{warn.Rule, "Warn", "db"}: 1}, 1},
		{put(web, "3", deny), true, map[violation]int{{deny.Rule, "Deny", "db"}: 1}, 1}, // the namespace's only object, its findings changed
		{put(web, "3", warn), true, map[violation]int{{warn.Rule, "Warn", "db"}: 1}, 1},
		{put(web, "3"), true, map[violation]int{}, 0},
	}
	s := newStore()
	for i, st := range steps {
		assert.Equal(t, st.changed, st.do(s), "step %d: changed", i)
		counts, _ := s.violations(true)
		assert.Equal(t, st.counts, counts, "step %d: counts", i)
		assert.Len(t, s.results("db"), st.results, "step %d: results", i)
	}
	_, objects := s.violations(false)
	assert.Equal(t, 1, objects, "web is judged and present")
	assert.Empty(t, s.namespaces())
}
