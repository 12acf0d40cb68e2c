package engine

import (
	"context"
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
	// Config is the policy the request is judged under: the image
	// profiles, credential patterns and weak passwords rules consult. Set
	// by the engine; never nil in a check.
	Config *Config
}

// Subject returns the object the request is about: Object, or OldObject on
// DELETE. It is the zero T when the request carries neither.
func (in *Input[T]) Subject() T {
	if in.Operation == admissionv1.Delete {
		return in.OldObject
	}
	return in.Object
}

// Lookup reads the objects a rule references: from the informer cache in
// the webhook (lookup.Reader; a Service or Secret the cache does not have is
// read live, at most once per kind and request, under a negative cache and
// a rate limit: lookup.Live), and from the manifest set or the live objects
// in the audit command (lookuptest.Objects). Besides these reads, the only API
// calls of an admission request are the Secret writes a Decision plans,
// which the webhook makes, not the engine.
//
// ctx bounds a live read; an in-memory Lookup ignores it. A missing object
// is reported as an error for which
// k8s.io/apimachinery/pkg/api/errors.IsNotFound is true. Returned objects
// are shared with the cache: callers must not modify them.
type Lookup interface {
	// Service returns the core/v1 Service namespace/name.
	Service(ctx context.Context, namespace, name string) (*corev1.Service, error)
	// Secret returns the core/v1 Secret namespace/name.
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
	// StatefulSets returns the apps/v1 StatefulSets of namespace, in any
	// order; an empty list (not an error) when there are none.
	StatefulSets(ctx context.Context, namespace string) ([]*appsv1.StatefulSet, error)
	// StatefulSetsReferencingSecret returns the apps/v1 StatefulSets of
	// namespace whose pod template references Secret secret (any
	// reference podrefs.SecretNames reports, optional ones included), in any
	// order; an empty list (not an error) when there are none. The webhook
	// serves it from an informer cache index, so that a Secret review's cost
	// does not grow with the number of StatefulSets in the namespace.
	StatefulSetsReferencingSecret(ctx context.Context, namespace, secret string) ([]*appsv1.StatefulSet, error)
	// StorageClass returns the cluster-scoped storage.k8s.io/v1 StorageClass name.
	StorageClass(ctx context.Context, name string) (*storagev1.StorageClass, error)
	// StorageClasses returns every StorageClass, in any order.
	StorageClasses(ctx context.Context) ([]*storagev1.StorageClass, error)
	// Namespace returns the Namespace name; used for namespaceSelector
	// exemptions only.
	Namespace(ctx context.Context, name string) (*corev1.Namespace, error)
	// PersistentVolumeClaims returns the core/v1 PVCs of namespace, in any
	// order; an empty list (not an error) when there are none.
	PersistentVolumeClaims(ctx context.Context, namespace string) ([]*corev1.PersistentVolumeClaim, error)
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

func (fs Findings) sort() {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Error.Field != fs[j].Error.Field {
			return fs[i].Error.Field < fs[j].Error.Field
		}
		return fs[i].Rule < fs[j].Rule
	})
}

// Denial returns a Deny finding of rule id, err tagged with the rule ID as
// every finding is: what the webhook answers when it learns, while
// executing a planned write, that the write must not happen (a Secret that
// holds another value).
func Denial(id string, err *field.Error) Finding {
	return Finding{Rule: id, Action: Deny, Error: tagged(err, id)}
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

// LookupFailed reports a Lookup error that is not NotFound, reading what
// ("Service ns/name"), at path: a field.InternalError, which the engine
// turns into a Warn finding that says the rule could not be evaluated
// (stsguard fails open).
func LookupFailed(path *field.Path, what string, err error) *field.Error {
	return field.InternalError(path, fmt.Errorf("reading %s: %w", what, err))
}
