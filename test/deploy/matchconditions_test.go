package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// webhookEntry is one webhook of either configuration, as the
// matchConditions checks read it.
type webhookEntry struct {
	name       string
	rules      []admissionregistrationv1.RuleWithOperations
	conditions []admissionregistrationv1.MatchCondition
}

func webhookEntries(r *rendered) []webhookEntry {
	var out []webhookEntry
	for _, c := range all[*admissionregistrationv1.MutatingWebhookConfiguration](r) {
		for _, w := range c.Webhooks {
			out = append(out, webhookEntry{w.Name, w.Rules, w.MatchConditions})
		}
	}
	for _, c := range all[*admissionregistrationv1.ValidatingWebhookConfiguration](r) {
		for _, w := range c.Webhooks {
			out = append(out, webhookEntry{w.Name, w.Rules, w.MatchConditions})
		}
	}
	return out
}

// operationsOfVerb are the admission operations an RBAC verb lets a client
// cause.
var operationsOfVerb = map[string][]admissionregistrationv1.OperationType{
	"create":           {admissionregistrationv1.Create},
	"update":           {admissionregistrationv1.Update},
	"patch":            {admissionregistrationv1.Update},
	"delete":           {admissionregistrationv1.Delete},
	"deletecollection": {admissionregistrationv1.Delete},
	"*":                {admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete},
}

// writesOf returns "group/resource OPERATION" for every write the
// ServiceAccount ns/sa may make through the Roles and ClusterRoles bound to
// it in r.
func writesOf(r *rendered, ns, sa string) sets.Set[string] {
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}
	var policyRules []rbacv1.PolicyRule
	for _, b := range all[*rbacv1.ClusterRoleBinding](r) {
		if slices.Contains(b.Subjects, subject) {
			for _, cr := range all[*rbacv1.ClusterRole](r) {
				if cr.Name == b.RoleRef.Name {
					policyRules = append(policyRules, cr.Rules...)
				}
			}
		}
	}
	for _, b := range all[*rbacv1.RoleBinding](r) {
		if !slices.Contains(b.Subjects, subject) {
			continue
		}
		if b.RoleRef.Kind == "ClusterRole" { // granted in the binding's namespace
			for _, cr := range all[*rbacv1.ClusterRole](r) {
				if cr.Name == b.RoleRef.Name {
					policyRules = append(policyRules, cr.Rules...)
				}
			}
			continue
		}
		for _, role := range all[*rbacv1.Role](r) {
			if role.Name == b.RoleRef.Name && role.Namespace == b.Namespace {
				policyRules = append(policyRules, role.Rules...)
			}
		}
	}
	writes := sets.New[string]()
	for _, pr := range policyRules {
		for _, verb := range pr.Verbs {
			for _, op := range operationsOfVerb[verb] {
				for _, g := range pr.APIGroups {
					for _, res := range pr.Resources {
						writes.Insert(fmt.Sprintf("%s/%s %s", g, res, op))
					}
				}
			}
		}
	}
	return writes
}

// matches reports whether w is called for op on group/resource; "*" as
// group or resource (an RBAC wildcard) stands for every one.
func (w webhookEntry) matches(group, resource string, op admissionregistrationv1.OperationType) bool {
	for _, rule := range w.rules {
		if (group == "*" || slices.Contains(rule.APIGroups, group) || slices.Contains(rule.APIGroups, "*")) &&
			(resource == "*" || slices.Contains(rule.Resources, resource) || slices.Contains(rule.Resources, "*")) &&
			(slices.Contains(rule.Operations, op) || slices.Contains(rule.Operations, admissionregistrationv1.OperationAll)) {
			return true
		}
	}
	return false
}

// checkMatchConditions holds the two promises of the webhooks'
// matchConditions, for stsguard running as the ServiceAccount ns/sa:
//
//   - stsguard's own writes never reach stsguard: every webhook that
//     matches a write its Roles and ClusterRoles allow (today: Secrets) has
//     the condition that keeps its username out;
//   - the apiserver evaluates matchConditions only where they can skip a
//     request: a webhook that matches none of stsguard's writes and no
//     UPDATE (the StatefulSet and Service CREATEs, Service DELETEs) has
//     none, because converting the objects to CEL values costs the
//     apiserver about a quarter of a millisecond per write (docs/speed.md).
func checkMatchConditions(t assert.TestingT, r *rendered, ns, sa string) {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	self := fmt.Sprintf("request.userInfo.username != 'system:serviceaccount:%s:%s'", ns, sa)
	writes := writesOf(r, ns, sa)
	assert.True(t, writes.Has("/secrets CREATE"), "stsguard creates Secrets (password-secret-ref); got %v", sets.List(writes))
	entries := webhookEntries(r)
	assert.NotEmpty(t, entries)
	for _, w := range entries {
		excludesSelf := slices.ContainsFunc(w.conditions, func(c admissionregistrationv1.MatchCondition) bool {
			return strings.Contains(c.Expression, self)
		})
		writtenBySelf := false
		for _, write := range sets.List(writes) {
			gr, op, _ := strings.Cut(write, " ")
			group, resource, _ := strings.Cut(gr, "/")
			if w.matches(group, resource, admissionregistrationv1.OperationType(op)) {
				writtenBySelf = true
				assert.True(t, excludesSelf, "%s matches stsguard's own %s: a matchCondition must keep %s out", w.name, write, sa)
			}
		}
		update := slices.ContainsFunc(w.rules, func(rule admissionregistrationv1.RuleWithOperations) bool {
			return slices.Contains(rule.Operations, admissionregistrationv1.Update) || slices.Contains(rule.Operations, admissionregistrationv1.OperationAll)
		})
		if !writtenBySelf && !update {
			assert.Empty(t, w.conditions, "%s: matchConditions here would skip no request and cost the apiserver a CEL conversion on every write", w.name)
		}
	}
}

// The two promises above hold for the checks' own table: a webhook of
// Secrets without the condition, and a CREATE webhook with one, are caught.
func TestCheckMatchConditionsCatches(t *testing.T) {
	role := &rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}}}}
	role.Name = "stsguard"
	binding := &rbacv1.ClusterRoleBinding{RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "stsguard"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "stsguard", Namespace: "ns"}}}
	binding.Name = "stsguard"
	self := admissionregistrationv1.MatchCondition{Name: "self", Expression: "request.userInfo.username != 'system:serviceaccount:ns:stsguard'"}
	rule := func(resource string, ops ...admissionregistrationv1.OperationType) []admissionregistrationv1.RuleWithOperations {
		return []admissionregistrationv1.RuleWithOperations{{Operations: ops,
			Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{resource}}}}
	}
	cases := []struct {
		name string
		hook admissionregistrationv1.ValidatingWebhook
		ok   bool
	}{
		{"Secrets with the condition", admissionregistrationv1.ValidatingWebhook{Name: "a", Rules: rule("secrets", "CREATE"), MatchConditions: []admissionregistrationv1.MatchCondition{self}}, true},
		{"Secrets without it", admissionregistrationv1.ValidatingWebhook{Name: "a", Rules: rule("secrets", "CREATE")}, false},
		{"Secrets matched by *", admissionregistrationv1.ValidatingWebhook{Name: "a", Rules: rule("*", "*")}, false},
		{"a Service CREATE without conditions", admissionregistrationv1.ValidatingWebhook{Name: "a", Rules: rule("services", "CREATE")}, true},
		{"a Service CREATE with one", admissionregistrationv1.ValidatingWebhook{Name: "a", Rules: rule("services", "CREATE", "DELETE"), MatchConditions: []admissionregistrationv1.MatchCondition{self}}, false},
		{"a Service UPDATE with one", admissionregistrationv1.ValidatingWebhook{Name: "a", Rules: rule("services", "UPDATE"), MatchConditions: []admissionregistrationv1.MatchCondition{self}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{Webhooks: []admissionregistrationv1.ValidatingWebhook{tc.hook}}
			r := &rendered{objs: []client.Object{role, binding, cfg}}
			var rec failures
			checkMatchConditions(&rec, r, "ns", "stsguard")
			assert.Equal(t, !tc.ok, len(rec.msgs) > 0, "%v", rec.msgs)
		})
	}

	// Writes granted another way: a RoleBinding to a ClusterRole, and a
	// wildcard resource. A Service webhook without the condition is caught.
	services := &admissionregistrationv1.ValidatingWebhookConfiguration{Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "a", Rules: rule("services", "CREATE")}}}
	wide := &rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"*"}, Verbs: []string{"create"}}}}
	wide.Name = "wide"
	inNamespace := &rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "wide"}, Subjects: binding.Subjects}
	inNamespace.Name, inNamespace.Namespace = "wide", "ns"
	var rec failures
	checkMatchConditions(&rec, &rendered{objs: []client.Object{role, binding, wide, inNamespace, services}}, "ns", "stsguard")
	assert.NotEmpty(t, rec.msgs, "a RoleBinding to a ClusterRole granting every resource of the core group")
}
