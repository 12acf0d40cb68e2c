// Package webhook adapts admission.k8s.io/v1 AdmissionReviews to the engine:
// it decodes the typed objects into an engine.Request (the scale
// subresource into the StatefulSet update it amounts to), calls
// engine.Admit against a Lookup over the informer cache, executes the Secret
// writes the decision plans (never on a dry run, within a deadline shorter
// than the webhook's timeout), and turns the decision into the response:
// Deny findings as an apierrors.NewInvalid status that kubectl prints like
// built-in validation, Warn findings as AdmissionReview warnings, mutations
// as a JSON patch. It also records the admission metrics. Handlers decide
// nothing themselves: every decision is the engine's.
package webhook
