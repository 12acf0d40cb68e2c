package engine

import (
	"fmt"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Action is what happens when a rule finds a problem. The names follow the
// validationActions of ValidatingAdmissionPolicy (Deny, Warn, Audit), plus
// Off for a rule that is not evaluated and Mutate for a change made by a
// mutator.
type Action string

// The actions a rule can have.
const (
	// Deny rejects the request with an apierrors.NewInvalid status.
	Deny Action = "Deny"
	// Warn admits the request and returns an AdmissionReview warning.
	Warn Action = "Warn"
	// Audit admits the request and records the finding for the audit log only.
	Audit Action = "Audit"
	// Off disables the rule.
	Off Action = "Off"
	// Mutate marks a change a mutator made; it is never a rule's finding action.
	Mutate Action = "Mutate"
)

// Kind names the Kubernetes kind a rule applies to, as "StatefulSet".
type Kind string

// The kinds stsguard admits.
const (
	// KindStatefulSet is apps/v1 StatefulSet.
	KindStatefulSet Kind = "StatefulSet"
	// KindService is core/v1 Service.
	KindService Kind = "Service"
	// KindSecret is core/v1 Secret.
	KindSecret Kind = "Secret"
)

// Object is the constraint on the typed API objects rules evaluate: a
// pointer such as *appsv1.StatefulSet.
type Object interface {
	metav1.Object
	comparable
}

// Input is one admission decision's view of an object of type T (a pointer to
// a typed API object such as *appsv1.StatefulSet).
type Input[T Object] struct {
	// Operation is admissionv1.Create, Update or Delete.
	Operation admissionv1.Operation
	// Object is the object as it would be stored; nil on Delete.
	Object T
	// OldObject is the stored object on Update and Delete; nil on Create.
	OldObject T
	// DryRun is true for a request that must leave nothing behind
	// (request.dryRun in admission.k8s.io/v1).
	DryRun bool
}

// Subject returns the object the request is about: Object, or OldObject on
// DELETE. It is the zero T when the request carries neither.
func (in *Input[T]) Subject() T {
	if in.Operation == admissionv1.Delete {
		return in.OldObject
	}
	return in.Object
}

// Lookup reads the objects a rule references, from an informer cache in the
// webhook and from the manifest set in the audit command. In the webhook, a
// Service or Secret the cache does not have may be read live, at most once
// per kind and request, under a negative cache and a rate limit
// (lookup.Live). Besides these reads, the only API calls of a request are
// the Secret writes of password-secret-ref (and their re-read after a
// conflict), made by the webhook, not through Lookup.
//
// A missing object is reported as an error for which
// k8s.io/apimachinery/pkg/api/errors.IsNotFound is true. Returned objects are
// shared with the cache: callers must not modify them.
type Lookup interface {
	// Service returns the core/v1 Service namespace/name.
	Service(namespace, name string) (*corev1.Service, error)
	// Secret returns the core/v1 Secret namespace/name.
	Secret(namespace, name string) (*corev1.Secret, error)
	// StatefulSets returns the apps/v1 StatefulSets of namespace, in any
	// order; an empty list (not an error) when there are none.
	StatefulSets(namespace string) ([]*appsv1.StatefulSet, error)
	// StatefulSetsReferencingSecret returns the apps/v1 StatefulSets of
	// namespace whose pod template references Secret secret (any
	// reference podrefs.SecretNames reports, optional ones included), in any
	// order; an empty list (not an error) when there are none. The webhook
	// serves it from an informer cache index, so that a Secret review's cost
	// does not grow with the number of StatefulSets in the namespace.
	StatefulSetsReferencingSecret(namespace, secret string) ([]*appsv1.StatefulSet, error)
	// StorageClass returns the cluster-scoped storage.k8s.io/v1 StorageClass name.
	StorageClass(name string) (*storagev1.StorageClass, error)
	// StorageClasses returns every StorageClass, in any order.
	StorageClasses() ([]*storagev1.StorageClass, error)
	// Namespace returns the Namespace name; used for namespaceSelector
	// exemptions only.
	Namespace(name string) (*corev1.Namespace, error)
	// PersistentVolumeClaims returns the core/v1 PVCs of namespace, in any
	// order; an empty list (not an error) when there are none.
	PersistentVolumeClaims(namespace string) ([]*corev1.PersistentVolumeClaim, error)
}

// Meta describes a rule or mutator in the catalog. IDs are kebab-case and
// stable: they are a public interface used in configuration, exemptions,
// metrics and audit output.
type Meta struct {
	// ID is the rule's stable kebab-case identifier.
	ID string
	// Kinds are the kinds of object the rule evaluates, in the order
	// StatefulSet, Service, Secret.
	Kinds []Kind
	// Action is the default action of the rule's findings; Mutate for a mutator.
	Action Action
	// Description says what the rule checks or changes, and why.
	Description string
}

// Rule is a validating rule over objects of type T. Its metadata is the
// catalog entry with the same ID.
type Rule[T Object] struct {
	// ID is the catalog ID of the rule.
	ID string
	// Check returns the problems it finds in in.Object, with field paths
	// rooted at the object (spec.serviceName, ...). It must not modify in.
	// A Lookup failure other than NotFound is returned as field.InternalError.
	Check func(in *Input[T], lk Lookup) field.ErrorList
	// Action, when set, is the default action of this check's findings in
	// place of the catalog's, for a rule whose findings weigh more in one
	// situation (storage-class-not-expandable: Warn on CREATE, Deny on a
	// resize). A policy that sets the rule's action overrides both.
	Action Action
}

// Mutator is a defaulting rule over objects of type T. Its metadata is the
// catalog entry with the same ID.
type Mutator[T Object] struct {
	// ID is the catalog ID of the mutator.
	ID string
	// FindingAction is the action for problems the mutator reports (for
	// example a Secret it must not overwrite).
	FindingAction Action
	// Mutate changes in.Object, which is the engine's private copy, recording
	// every change in m. It sets a value only where it must, so that applying
	// it to its own result changes nothing.
	Mutate func(in *Input[T], lk Lookup, m *Mutation) field.ErrorList
	// Default is true for a mutator that fills in a default for a new
	// object. It steps aside on the CREATE of an object that re-creates one
	// already running (RecreateAnnotation): its pods run the stored
	// template, and any change to it would replace every pod.
	Default bool
}

// Finding is one problem found by one rule.
type Finding struct {
	// Rule is the ID of the rule that found the problem.
	Rule string
	// Action is what the admission decision does with it.
	Action Action
	// Error is the problem, with its field path. Its Detail ends with the
	// rule ID and never contains a secret value.
	Error *field.Error
}

// String renders the finding as kubectl prints a field error:
// "spec.serviceName: Not found: \"web\": ... [rule: headless-service-missing]".
func (f Finding) String() string { return f.Error.Error() }

// Findings is a list of findings, sorted by field path and rule ID.
type Findings []Finding

// ByAction returns the findings with action a, in order.
func (fs Findings) ByAction(a Action) Findings {
	var out Findings
	for _, f := range fs {
		if f.Action == a {
			out = append(out, f)
		}
	}
	return out
}

// Errors returns the findings' field errors, in order.
func (fs Findings) Errors() field.ErrorList {
	out := make(field.ErrorList, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.Error)
	}
	return out
}

// Internal returns the findings that report a failure of stsguard itself
// (a Lookup error or a rule that panicked) rather than a problem of the object.
func (fs Findings) Internal() Findings {
	var out Findings
	for _, f := range fs {
		if f.Error.Type == field.ErrorTypeInternal {
			out = append(out, f)
		}
	}
	return out
}

func (fs Findings) sort() {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Error.Field != fs[j].Error.Field {
			return fs[i].Error.Field < fs[j].Error.Field
		}
		return fs[i].Rule < fs[j].Rule
	})
}

// ruleTag is appended to every finding's detail so that a user can look the
// rule up and exempt it.
func ruleTag(id string) string { return "[rule: " + id + "]" }

func tagged(err *field.Error, id string) *field.Error {
	e := *err
	if e.Detail == "" {
		e.Detail = ruleTag(id)
	} else if !strings.HasSuffix(e.Detail, ruleTag(id)) {
		e.Detail = e.Detail + " " + ruleTag(id)
	}
	return &e
}

// lookupFailed reports a Lookup error that is not NotFound: stsguard cannot
// decide, which the webhook turns into an error response.
func lookupFailed(path *field.Path, what string, err error) *field.Error {
	return field.InternalError(path, fmt.Errorf("reading %s: %w", what, err))
}
