// Package rules is stsguard's rule engine: the one place that decides what is
// wrong with a StatefulSet and what safe defaults to mutate in.
//
// A rule is a plain function over typed objects (an [Input]) and a read-only
// [Lookup] of the objects it references; it returns a field.ErrorList in the
// style of Kubernetes' pkg/apis/apps/validation. A mutator changes a private
// copy of the object and records each change as a JSON patch operation. The
// [Engine] holds the explicit registry, runs every rule in a stable order and
// attaches rule IDs and actions to the findings. It knows nothing of HTTP:
// the admission webhook, the audit command and the expand command all feed it.
package engine
