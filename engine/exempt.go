package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Annotations that exempt one object from rules. The exemption is honoured
// only when ExemptReasonAnnotation is set and not blank, so that every
// exemption says why it exists.
const (
	// ExemptAnnotation lists rule IDs, comma-separated: "weak-password,readiness-probe-missing".
	ExemptAnnotation = "stsguard.io/exempt"
	// ExemptReasonAnnotation says why (a ticket, a person, a date).
	ExemptReasonAnnotation = "stsguard.io/exempt-reason"
)

// Exemption is one exemption that suppressed a rule's findings or a
// mutator's changes on one object.
type Exemption struct {
	// Rule is the ID of the exempted rule or mutator.
	Rule string
	// By is "annotation" (the object's stsguard.io/exempt), "namespace"
	// (the policy's exemptions) or "recreate" (a default that steps aside
	// for a re-created object, see RecreateAnnotation).
	By string
	// Reason is the object's stsguard.io/exempt-reason, the namespace
	// exemption that matched ("namespace legacy", "namespaceSelector team=x"),
	// or "stsguard.io/recreate-of=<uid>".
	Reason string
}

// exemptionSet is what exempts one object.
type exemptionSet struct {
	annotation map[string]Exemption // by rule ID
	namespace  []Exemption          // Rule "" exempts every rule
	// problems are exemption-invalid findings: an annotation without a
	// reason, unknown rule IDs, a namespace that could not be read.
	problems field.ErrorList
}

func (s exemptionSet) exempts(id string) (Exemption, bool) {
	if x, ok := s.annotation[id]; ok {
		return x, true
	}
	for _, x := range s.namespace {
		if x.Rule == "" || x.Rule == id {
			x.Rule = id
			return x, true
		}
	}
	return Exemption{}, false
}

func appendExemption(list []Exemption, x Exemption) []Exemption {
	for _, have := range list {
		if have.Rule == x.Rule {
			return list
		}
	}
	return append(list, x)
}

// ExemptionInvalid is the ID of the rule that reports an exemption
// annotation the engine ignores. Its check is the engine's reading of the
// annotations (exemptions below); it judges every kind.
const ExemptionInvalid = "exemption-invalid"

var exemptionInvalid = Rule{
	ID: ExemptionInvalid, Area: AreaStsguard, Action: Warn,
	Description: "The stsguard.io/exempt annotation names an unknown rule, or has no non-empty stsguard.io/exempt-reason beside it, so it is ignored.",
}

var (
	exemptPath       = field.NewPath("metadata", "annotations").Key(ExemptAnnotation)
	exemptReasonPath = field.NewPath("metadata", "annotations").Key(ExemptReasonAnnotation)
)

// exemptions collects what exempts obj: its annotations and the policy's
// namespace exemptions.
func (e *Engine) exemptions(ctx context.Context, obj metav1.Object, lk Lookup) exemptionSet {
	var set exemptionSet
	if raw, ok := obj.GetAnnotations()[ExemptAnnotation]; ok {
		reason := strings.TrimSpace(obj.GetAnnotations()[ExemptReasonAnnotation])
		var ids, unknown []string
		for _, id := range strings.Split(raw, ",") {
			id = strings.TrimSpace(id)
			if id == "" {
				continue
			}
			if !e.known(id) {
				unknown = append(unknown, id)
				continue
			}
			ids = append(ids, id)
		}
		for _, id := range unknown {
			set.problems = append(set.problems, field.Invalid(exemptPath, id,
				"is not a stsguard rule ID, so it exempts nothing; `stsguard rules` lists the IDs"))
		}
		switch {
		case reason == "" && len(ids) > 0:
			set.problems = append(set.problems, field.Required(exemptReasonPath, fmt.Sprintf(
				"%s is ignored, so rules %s still apply: set %s to why they do not apply to this object (a ticket, an owner, a date)",
				ExemptAnnotation, strings.Join(ids, ", "), ExemptReasonAnnotation)))
		case reason != "":
			set.annotation = map[string]Exemption{}
			for _, id := range ids {
				set.annotation[id] = Exemption{Rule: id, By: "annotation", Reason: reason}
			}
		}
	}

	ns := obj.GetNamespace()
	var nsLabels labels.Set
	nsRead, nsFound := false, false
	for _, x := range e.cfg.Exemptions {
		var why string
		switch {
		case slices.Contains(x.Namespaces, ns):
			why = "namespace " + ns
		case x.NamespaceSelector != nil && !x.NamespaceSelector.Empty():
			if !nsRead {
				nsRead = true
				n, err := lk.Namespace(ctx, ns)
				switch {
				case apierrors.IsNotFound(err):
				case err != nil:
					set.problems = append(set.problems, LookupFailed(field.NewPath("metadata", "namespace"), "Namespace "+ns+" for the policy's namespaceSelector exemptions", err))
				default:
					nsLabels, nsFound = n.Labels, true
				}
			}
			if nsFound && x.NamespaceSelector.Matches(nsLabels) {
				why = "namespaceSelector " + x.NamespaceSelector.String()
			}
		}
		if why == "" {
			continue
		}
		if len(x.Rules) == 0 {
			set.namespace = append(set.namespace, Exemption{By: "namespace", Reason: why})
		}
		for _, id := range x.Rules {
			set.namespace = append(set.namespace, Exemption{Rule: id, By: "namespace", Reason: why})
		}
	}
	return set
}
