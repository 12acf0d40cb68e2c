// Package webhook adapts admission.k8s.io/v1 AdmissionReviews to the rule
// engine in package rules: it decodes the typed objects, runs the engine
// against a Lookup over the informer cache, writes the Secrets a mutation
// relies on (never on a dry run), and turns findings into the response:
// Deny findings as an apierrors.NewInvalid status that kubectl prints like
// built-in validation, Warn findings as AdmissionReview warnings, mutations
// as a JSON patch. Handlers are thin; every decision lives in package rules.
package webhook
