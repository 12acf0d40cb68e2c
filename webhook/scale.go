package webhook

import (
	"context"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/kinds"
)

// scaleGVK is the kind of the body of a scale subresource request.
var scaleGVK = metav1.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}

// decodeSubresource reads a request for a subresource of k's kind. An UPDATE
// of the scale subresource (kubectl scale, a HorizontalPodAutoscaler, KEDA)
// becomes the UPDATE of the object it amounts to, judged by the same rules
// as a change of spec.replicas. Any other subresource, and a scale request
// stsguard cannot turn into one, is admitted unjudged (nil input): the body
// is the apiserver's own Scale, and a 400 here would be a denial whatever
// the failurePolicy. Such a scale request is logged, and counted as a bad
// request (stsguard_admission_errors_total{reason="bad-request"}), so that
// it is seen.
func decodeSubresource(ctx context.Context, k *kind, req admission.Request, lk engine.Lookup) (*engine.Request, *admission.Response) {
	if req.SubResource != "scale" || k.scale == nil || req.Operation != admissionv1.Update {
		return nil, nil
	}
	r, err := k.scale(ctx, req, lk)
	if err != nil {
		// Usually a StatefulSet created a moment ago that the cache has not
		// seen: not an error of stsguard's, but counted, so it is seen.
		logf.FromContext(ctx).Info("scale request admitted without judging it", "namespace", req.Namespace, "name", req.Name, "reason", err.Error())
		resp := admission.Allowed("")
		resp.Warnings = []string{fmt.Sprintf("stsguard could not judge this scale of %s %s/%s, so it did not block it: %v", k.gvk.Kind, req.Namespace, req.Name, err)}
		return nil, &resp
	}
	return r, nil
}

// statefulSetScale returns the UPDATE that an UPDATE of statefulsets/scale
// amounts to: the StatefulSet as the informer cache holds it (OldObject),
// and a copy with spec.replicas set to the Scale's spec.replicas (Object).
// It returns an error when the body is not an autoscaling/v1 Scale or the
// StatefulSet is not in the cache.
func statefulSetScale(ctx context.Context, req admission.Request, lk engine.Lookup) (*engine.Request, error) {
	if req.Kind != scaleGVK {
		return nil, fmt.Errorf("request.kind is %s, not %s", gvkString(req.Kind), gvkString(scaleGVK))
	}
	scale := &autoscalingv1.Scale{}
	if err := decodeObject(req.Object.Raw, scale, scaleGVK); err != nil {
		return nil, fmt.Errorf("request.object is not a valid %s: %w", gvkString(scaleGVK), err)
	}
	list, err := lk.StatefulSets(ctx, req.Namespace)
	if err != nil {
		return nil, fmt.Errorf("listing StatefulSets: %w", err)
	}
	for _, sts := range list {
		if sts.Name != req.Name {
			continue
		}
		scaled := sts.DeepCopy()
		scaled.Spec.Replicas = ptr.To(scale.Spec.Replicas)
		return &engine.Request{Kind: kinds.StatefulSet,
			Operation: admissionv1.Update, Object: scaled, OldObject: sts, DryRun: ptr.Deref(req.DryRun, false),
		}, nil
	}
	return nil, fmt.Errorf("StatefulSet %s/%s is not in stsguard's cache yet", req.Namespace, req.Name)
}
