package engine

import (
	"context"

	"github.com/stsguard/stsguard/credentials"
	"github.com/stsguard/stsguard/kinds"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Area groups rules in the catalog and the documentation.
type Area string

// The areas of the catalog, in documentation order.
const (
	// AreaPairing: a StatefulSet and its governing headless Service.
	AreaPairing Area = "pairing"
	// AreaCredentials: Secrets and the passwords of database images.
	AreaCredentials Area = "credentials"
	// AreaStorage: volumeClaimTemplates, StorageClasses and PVCs.
	AreaStorage Area = "storage"
	// AreaRollout: rolling updates and the pod lifecycle.
	AreaRollout Area = "rollout"
	// AreaStsguard: stsguard's own annotations.
	AreaStsguard Area = "stsguard"
)

// CheckFunc is a validating rule's check over objects of type T. It returns the
// problems it finds in in.Object (in.OldObject on DELETE), with field paths
// rooted at the object (spec.serviceName, ...). It must not modify in. A
// Lookup failure other than NotFound is returned as a field.InternalError
// (see LookupFailed); the engine turns it into a Warn finding, so that
// stsguard fails open.
type CheckFunc[T Object] func(ctx context.Context, in *Input[T], lk Lookup) field.ErrorList

// MutateFunc is a mutator's change to objects of type T. It changes in.Object,
// which is the engine's private copy, and records every change in m (a JSON
// patch operation each). It sets a value only where it must, so that
// applying it to its own result changes nothing. The problems it returns are
// findings with the Rule's FindingAction.
type MutateFunc[T Object] func(ctx context.Context, in *Input[T], lk Lookup, m *Mutation) field.ErrorList

// Rule declares one rule or mutator, once: its catalog entry and its checks
// (or changes), one per kind it judges. IDs are kebab-case and stable: they
// are a public interface used in policy files, exemption annotations,
// metrics labels and audit output. The declaration of built-in rule "<id>"
// lives in rules/<id>.go; exemption-invalid, whose check is the engine's
// reading of the exemption annotations, in engine/exempt.go.
type Rule struct {
	// ID is the rule's stable kebab-case identifier.
	ID string
	// Area groups the rule in the catalog.
	Area Area
	// Action is the default action of the rule's findings (Deny, Warn or
	// Audit); Mutate for a mutator.
	Action Action
	// ActionOnUpdate, when set, is the default action of the findings on
	// UPDATE in place of Action, for a rule whose findings weigh more then
	// (storage-class-not-expandable: Warn on CREATE, Deny on a resize). A
	// policy that sets the rule's action overrides both. Such a rule's
	// findings on UPDATE are about the update (the resize), not about the
	// stored object, so they are never ratcheted against the findings the
	// stored object would have on CREATE.
	ActionOnUpdate Action
	// Description says what the rule checks or changes, and why (the
	// catalog, `stsguard rules`, docs/rules.md).
	Description string

	// StatefulSet, Service and Secret are the rule's checks, one per kind
	// it judges; nil for a kind it does not judge.
	StatefulSet CheckFunc[*appsv1.StatefulSet]
	Service     CheckFunc[*corev1.Service]
	Secret      CheckFunc[*corev1.Secret]

	// MutateStatefulSet and MutateService are a mutator's changes, one per
	// kind it defaults; nil for a kind it leaves alone.
	MutateStatefulSet MutateFunc[*appsv1.StatefulSet]
	MutateService     MutateFunc[*corev1.Service]
	// FindingAction is the action of the problems a mutator reports (for
	// example a Secret it must not overwrite).
	FindingAction Action
	// SecretNotWritten, for a mutator that plans Secret writes, describes
	// a change of its that was not made because Secret sr could not be
	// written (reason says why and holds no secret value): a
	// field.ErrorTypeInternal error at the change's field path, with what
	// to do by hand; nil for a change that only follows another. See
	// Engine.WithoutSecret.
	SecretNotWritten func(sr *credentials.SecretRequest, c Change, reason string) *field.Error
	// Default is true for a mutator that fills in a default for a new
	// object. It steps aside on the CREATE of an object that re-creates one
	// already running (RecreateAnnotation): its pods run the stored
	// template, and any change to it would replace every pod.
	Default bool
}

// Meta is the catalog entry of a rule: its declaration without the checks.
type Meta struct {
	// ID is the rule's stable kebab-case identifier.
	ID string
	// Area groups the rule in the catalog.
	Area Area
	// Kinds are the kinds of object the rule evaluates, in the order
	// StatefulSet, Service, Secret.
	Kinds []kinds.Kind
	// Action is the default action of the rule's findings; Mutate for a mutator.
	Action Action
	// Description says what the rule checks or changes, and why.
	Description string
}

// Meta returns the rule's catalog entry; its Kinds are those it declares a
// check or change for.
func (r *Rule) Meta() Meta {
	m := Meta{ID: r.ID, Area: r.Area, Action: r.Action, Description: r.Description}
	if r.StatefulSet != nil || r.MutateStatefulSet != nil {
		m.Kinds = append(m.Kinds, kinds.StatefulSet)
	}
	if r.Service != nil || r.MutateService != nil {
		m.Kinds = append(m.Kinds, kinds.Service)
	}
	if r.Secret != nil {
		m.Kinds = append(m.Kinds, kinds.Secret)
	}
	if r.ID == ExemptionInvalid {
		m.Kinds = kinds.Judged() // exemptions are read on every object judged
	}
	return m
}

// isMutator reports whether the rule is a mutator (Action Mutate).
func (r *Rule) isMutator() bool { return r.Action == Mutate }
