package webhook

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/stsguard/stsguard/credentials"
	"github.com/stsguard/stsguard/engine"
)

// DefaultSecretWriteTimeout bounds the Secret writes of one admission
// request when Handlers.SecretWriteTimeout is zero: 2 s, well under the 5 s
// timeoutSeconds of the webhook configurations in deploy/base, so that
// stsguard answers, with the rest of its decision, before the apiserver
// gives up on it.
const DefaultSecretWriteTimeout = 2 * time.Second

func (h *Handlers) secretWriteTimeout() time.Duration {
	if h.SecretWriteTimeout > 0 {
		return h.SecretWriteTimeout
	}
	return DefaultSecretWriteTimeout
}

// writeSecrets executes the Secret writes decision d plans (password-secret-ref's
// <statefulset>-credentials), all of them within SecretWriteTimeout, and
// leaves in d the mutation and findings to answer with. It denies only when it learns that a
// Secret holds a different value (or is not stsguard's and lacks keys):
// that is a decision, the same one the mutator makes when the cache already
// shows it.
//
// Any other failure (an error from the API, RBAC, a quota, a Secret that
// keeps changing, no answer within the deadline) is stsguard failing, not
// the object being wrong. stsguard then admits the request without the
// changes that rely on that Secret: the literal stays in the env var, no
// generated password is added, kubectl's last-applied configuration is left
// as it was; every other default is still applied. Each change not made
// becomes a warning that says where, why and how to do it by hand, and
// stsguard_admission_errors_total{reason="secret-write"} counts the request.
//
// Why not an error response: the apiserver takes any webhook answer with
// allowed: false as a denial, whatever the webhook's failurePolicy, so an
// HTTP 500 here would block every write of a database whose Secret cannot
// be written, although the mutating webhook is registered with
// failurePolicy: Ignore precisely so that a failure of stsguard never
// blocks a write. Admitting without the move is the answer the apiserver
// itself gives when the webhook fails under Ignore, with the reason told
// to the user. And why the deadline: a write that outlives the webhook's
// timeoutSeconds would have the apiserver fail the call open anyway, but
// with no patch at all and no warning, possibly after the Secret was
// written.
//
// No secret value reaches a warning, a log line, a metric or an error:
// reasons are stripped of every value the request would have written.
func writeSecrets(ctx context.Context, h *Handlers, e *engine.Engine, log logr.Logger, k *kind, r *engine.Request, d *engine.Decision) *admission.Response {
	if len(d.Mutation.Secrets()) == 0 {
		return nil
	}
	timeout := h.secretWriteTimeout()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, sr := range append([]*credentials.SecretRequest(nil), d.Mutation.Secrets()...) {
		deny, err := h.writeSecret(wctx, sr)
		if deny != nil {
			record(h, log, k, r, engine.Findings{*deny}, nil)
			resp := invalid(k.gk, objectName(r.Subject()), append(engine.Findings{*deny}, d.Findings...))
			return &resp
		}
		if err == nil {
			log.Info("wrote Secret for moved credentials", "secret", sr.String())
			continue
		}
		reason := redact(writeFailure(wctx, err, timeout), sr)
		h.Metrics.errored(k.Kind, reasonSecretWrite)
		var fs engine.Findings
		d.Mutation, fs = e.WithoutSecret(d.Mutation, sr, reason)
		record(h, log, k, r, fs, nil)
		d.Findings = append(d.Findings, fs...)
	}
	return nil
}

// secretWriteRetry is how often writeSecret writes: the planned write and,
// after a conflict, one more planned against the Secret read live, 10 ms
// (jittered) later.
var secretWriteRetry = wait.Backoff{Steps: 2, Duration: 10 * time.Millisecond, Factor: 1, Jitter: 0.1}

// writeConflict reports whether a write of a Secret failed because the
// Secret is not as planned: it was written in between (a conflict on the
// resourceVersion), or exists where the plan (the cache) had none.
func writeConflict(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
}

// writeSecret executes one SecretRequest: it creates the Secret or adds the
// missing keys with a merge patch that carries the resourceVersion the plan
// was made against. After a conflict (another request wrote the Secret in
// between, or the cache was behind) it re-reads the Secret live and plans
// again, once (retry.OnError, as retry.RetryOnConflict with AlreadyExists
// counted as a conflict). It returns nil, nil on success; a Deny finding
// when the Secret turns out to hold something stsguard must not overwrite;
// an error otherwise.
func (h *Handlers) writeSecret(ctx context.Context, sr *credentials.SecretRequest) (*engine.Finding, error) {
	var deny *engine.Finding
	replan := false
	err := retry.OnError(secretWriteRetry, writeConflict, func() error {
		if replan {
			next, f, err := h.planLive(ctx, sr)
			if err != nil || f != nil || next == nil {
				deny = f
				return err // nil: denied, or someone else wrote exactly what we need
			}
			sr = next
		}
		replan = true
		return h.applySecret(ctx, sr)
	})
	switch {
	case deny != nil:
		return deny, nil
	case writeConflict(err):
		return nil, errors.New("the Secret kept changing while stsguard was writing it")
	}
	return nil, err
}

// planLive re-reads sr's Secret live and plans sr's write against it: the
// next write to try, or nil when the Secret already holds what sr needs; a
// Deny finding when it holds something stsguard must not overwrite.
func (h *Handlers) planLive(ctx context.Context, sr *credentials.SecretRequest) (*credentials.SecretRequest, *engine.Finding, error) {
	live := &corev1.Secret{}
	switch err := h.Secrets.Get(ctx, types.NamespacedName{Namespace: sr.Namespace, Name: sr.Name}, live); {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return nil, nil, fmt.Errorf("re-reading it after a conflict: %w", err)
	}
	next, ferr := sr.Plan(live, sr.Field)
	if ferr != nil {
		f := engine.Denial(sr.Rule, ferr)
		return nil, &f, nil
	}
	return next, nil, nil
}

func (h *Handlers) applySecret(ctx context.Context, sr *credentials.SecretRequest) error {
	if sr.Create {
		return h.Secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace:   sr.Namespace,
				Name:        sr.Name,
				Labels:      map[string]string{credentials.ManagedByLabel: credentials.ManagedByValue},
				Annotations: map[string]string{credentials.StatefulSetAnnotation: sr.StatefulSet},
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

// writeFailure says why a write failed, for a warning: the deadline, or the
// API's answer.
func writeFailure(ctx context.Context, err error, timeout time.Duration) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("the API server did not answer within %s", timeout)
	}
	return err.Error()
}

// redact removes from s every value sr would have written, raw and base64
// encoded, in case an error echoes the object (a third-party webhook's
// denial might).
func redact(s string, sr *credentials.SecretRequest) string {
	for _, v := range sr.Data() {
		if len(v) == 0 {
			continue
		}
		for _, form := range []string{string(v), base64.StdEncoding.EncodeToString(v)} {
			s = strings.ReplaceAll(s, form, "[redacted]")
		}
	}
	return s
}
