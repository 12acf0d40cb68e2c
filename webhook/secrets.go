package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/stsguard/stsguard/webhook/rules"
)

// writeSecret executes one SecretRequest: it creates the Secret or adds the
// missing keys with a merge patch that carries the resourceVersion the plan
// was made against. After a conflict (another request wrote the Secret in
// between, or the cache was behind) it re-reads the Secret live and plans
// again once. It returns nil on success and the response to send otherwise;
// no value ever reaches a log or a message.
func (h *Handlers) writeSecret(ctx context.Context, gk schema.GroupKind, sr *rules.SecretRequest) *admission.Response {
	log := logf.FromContext(ctx)
	for attempt := 0; attempt < 2; attempt++ {
		err := h.applySecret(ctx, sr)
		if err == nil {
			log.Info("wrote Secret for moved credentials", "secret", sr.String())
			return nil
		}
		if !apierrors.IsAlreadyExists(err) && !apierrors.IsConflict(err) {
			log.Error(err, "writing Secret failed", "secret", sr.String())
			r := admission.Errored(http.StatusInternalServerError, fmt.Errorf("stsguard could not write Secret %s/%s: %w", sr.Namespace, sr.Name, err))
			return &r
		}
		live := &corev1.Secret{}
		switch err := h.Secrets.Get(ctx, types.NamespacedName{Namespace: sr.Namespace, Name: sr.Name}, live); {
		case apierrors.IsNotFound(err):
			live = nil
		case err != nil:
			r := admission.Errored(http.StatusInternalServerError, fmt.Errorf("stsguard could not read Secret %s/%s: %w", sr.Namespace, sr.Name, err))
			return &r
		}
		next, ferr := sr.Plan(live, sr.Field)
		if ferr != nil {
			r := invalid(gk, sr.StatefulSet, rules.Findings{{Rule: rules.PasswordSecretRef, Action: rules.Deny, Error: ferr}})
			return &r
		}
		if next == nil {
			return nil // someone else wrote exactly what we need
		}
		sr = next
	}
	st := apierrors.NewConflict(corev1.Resource("secrets"), sr.Name, fmt.Errorf("the Secret changed while stsguard was writing it; retry the request")).Status()
	return &admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &st}}
}

func (h *Handlers) applySecret(ctx context.Context, sr *rules.SecretRequest) error {
	if sr.Create {
		return h.Secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace:   sr.Namespace,
				Name:        sr.Name,
				Labels:      map[string]string{rules.ManagedByLabel: rules.ManagedByValue},
				Annotations: map[string]string{rules.StatefulSetAnnotation: sr.StatefulSet},
			},
			Type: corev1.SecretTypeOpaque,
			Data: sr.Data(),
		})
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": sr.ResourceVersion},
		"data":     sr.Data(),
	})
	if err != nil {
		return err
	}
	target := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: sr.Namespace, Name: sr.Name}}
	return h.Secrets.Patch(ctx, target, client.RawPatch(types.MergePatchType, patch))
}
