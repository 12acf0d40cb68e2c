package webhook

import (
	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/stsguard/stsguard/engine"
)

// invalid returns a denial carrying apierrors.NewInvalid for the Deny
// findings (HTTP 422, reason Invalid, one cause per field), so that kubectl
// prints "StatefulSet.apps \"web\" is invalid: spec.serviceName: ...", and
// the Warn findings as warnings.
func invalid(gk schema.GroupKind, name string, fs engine.Findings) admission.Response {
	st := apierrors.NewInvalid(gk, name, fs.ByAction(engine.Deny).Errors()).Status()
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed:  false,
		Result:   &st,
		Warnings: warnings(fs),
	}}
}

// warnings renders the Warn findings as AdmissionReview warnings.
func warnings(fs engine.Findings) []string {
	var out []string
	for _, f := range fs.ByAction(engine.Warn) {
		out = append(out, f.String())
	}
	return out
}

// badRequest answers a request that stsguard cannot read: allowed false,
// HTTP 400, with a message that says what was wrong.
func badRequest(msg string) admission.Response {
	st := apierrors.NewBadRequest(msg).Status()
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &st}}
}

// auditAnnotations renders the Audit findings as AdmissionResponse
// auditAnnotations, which the apiserver writes into its audit log under
// "<webhook name>/<rule ID>". They never reach the user. Findings of one
// rule are joined with "; ".
func auditAnnotations(fs engine.Findings) map[string]string {
	var out map[string]string
	for _, f := range fs.ByAction(engine.Audit) {
		if out == nil {
			out = map[string]string{}
		}
		if have, ok := out[f.Rule]; ok {
			out[f.Rule] = have + "; " + f.String()
			continue
		}
		out[f.Rule] = f.String()
	}
	return out
}
