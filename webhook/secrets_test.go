package webhook_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/stsguard/stsguard/credentials"
	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/lookuptest"
	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/webhook"
)

// movedPassword is the literal password the tests' MySQL StatefulSet
// carries; it must never appear in a warning, a message or a log.
const movedPassword = "n0t-the-seed-pw-7"

func statefulSetGVK() metav1.GroupVersionKind {
	return metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
}

// TestSecretWriteFailureAdmitsWithoutTheMove: when password-secret-ref
// cannot write its Secret (an error from the API, or no answer within the
// deadline), stsguard admits the request without the changes that rely on
// the Secret, with a warning that says what stayed as it was, where, why
// and how to fix it, and counts stsguard_admission_errors_total{reason=
// "secret-write"}: the same fail-open answer the apiserver gives for a
// webhook that fails under failurePolicy Ignore, instead of an HTTP 500
// that the apiserver takes as a denial whatever the failurePolicy.
func TestSecretWriteFailureAdmitsWithoutTheMove(t *testing.T) {
	// blockUntilDeadline answers only when the request's context ends, or
	// after 3 s (so that a handler without a deadline fails the test
	// instead of hanging it).
	blockUntilDeadline := func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(3 * time.Second):
			return errors.New("no deadline: the write was not bounded")
		}
	}
	quota := func(name, value string) error {
		// A message that echoes the value, as a third-party webhook might:
		// stsguard must not pass it on.
		return apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, name,
			errors.New(`exceeded quota: secrets, requested: count/secrets=1, used: count/secrets=0, limited: count/secrets=0 (data `+value+`)`))
	}
	mysql := func() *appsv1.StatefulSet {
		s := seedStatefulSet(t, "mysql-plaintext-password")
		s.Spec.Template.Spec.Containers[0].Env[0].Value = movedPassword
		return s
	}
	postgres := func() *appsv1.StatefulSet {
		s := seedStatefulSet(t, "mysql-plaintext-password")
		s.Name = "pg"
		s.Spec.Template.Spec.Containers[0].Image = "postgres:16"
		s.Spec.Template.Spec.Containers[0].Env = nil
		return s
	}
	cases := []struct {
		name        string
		sts         *appsv1.StatefulSet
		funcs       interceptor.Funcs
		wantAllowed bool
		wantMoved   bool     // the env entry is patched to a secretKeyRef
		wantWarn    []string // a warning holds every part
		wantError   bool     // stsguard_admission_errors_total{reason="secret-write"} counted
		maxTime     time.Duration
	}{
		{name: "the write succeeds: moved", sts: mysql(), wantAllowed: true, wantMoved: true,
			wantWarn: []string{"changed by stsguard: moved the literal value of MYSQL_ROOT_PASSWORD"}},
		{name: "the API refuses the write: admitted with the literal and a warning", sts: mysql(),
			funcs: interceptor.Funcs{Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
				return quota("mysql-credentials", movedPassword)
			}},
			wantAllowed: true, wantError: true,
			wantWarn: []string{"spec.template.spec.containers[0].env[0]: ", `could not write Secret "mysql-credentials"`, "exceeded quota",
				"MYSQL_ROOT_PASSWORD stays a literal", "kubectl create secret generic mysql-credentials --from-literal=mysql-root-password=",
				"valueFrom.secretKeyRef", "[rule: password-secret-ref]"}},
		{name: "no answer within the deadline: admitted with the literal and a warning", sts: mysql(),
			funcs: interceptor.Funcs{Create: func(ctx context.Context, _ client.WithWatch, _ client.Object, _ ...client.CreateOption) error {
				return blockUntilDeadline(ctx)
			}},
			wantAllowed: true, wantError: true, maxTime: time.Second,
			wantWarn: []string{"spec.template.spec.containers[0].env[0]: ", "did not answer within 100ms", "MYSQL_ROOT_PASSWORD stays a literal"}},
		{name: "the re-read after a conflict fails: admitted with the literal", sts: mysql(),
			funcs: interceptor.Funcs{
				Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
					return apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, "mysql-credentials")
				},
				Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
					return apierrors.NewServiceUnavailable("etcd is down")
				},
			},
			wantAllowed: true, wantError: true, wantWarn: []string{"etcd is down", "MYSQL_ROOT_PASSWORD stays a literal"}},
		{name: "a conflict, then the Secret read live already holds the value: moved", sts: mysql(),
			funcs: interceptor.Funcs{
				Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
					return apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, "mysql-credentials")
				},
				Get: func(_ context.Context, _ client.WithWatch, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
					s := obj.(*corev1.Secret)
					s.Namespace, s.Name = key.Namespace, key.Name
					s.Data = map[string][]byte{"mysql-root-password": []byte(movedPassword)}
					return nil
				},
			},
			wantAllowed: true, wantMoved: true,
			wantWarn: []string{"changed by stsguard: moved the literal value of MYSQL_ROOT_PASSWORD"}},
		{name: "a Secret that keeps changing: admitted with the literal", sts: mysql(),
			funcs: interceptor.Funcs{
				Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
					return apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, "mysql-credentials")
				},
				Get: func(_ context.Context, _ client.WithWatch, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
					s := obj.(*corev1.Secret)
					s.Namespace, s.Name, s.ResourceVersion = key.Namespace, key.Name, "7"
					s.Labels = map[string]string{credentials.ManagedByLabel: credentials.ManagedByValue}
					s.Data = map[string][]byte{"other-key": []byte("x")}
					return nil
				},
				Patch: func(context.Context, client.WithWatch, client.Object, client.Patch, ...client.PatchOption) error {
					return apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, "mysql-credentials", errors.New("the object has been modified"))
				},
			},
			wantAllowed: true, wantError: true, wantWarn: []string{"the Secret kept changing while stsguard was writing it", "MYSQL_ROOT_PASSWORD stays a literal"}},
		{name: "a generated password that cannot be written is not added", sts: postgres(),
			funcs: interceptor.Funcs{Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
				return quota("pg-credentials", "x")
			}},
			wantAllowed: true, wantError: true,
			wantWarn: []string{"spec.template.spec.containers[0].env[POSTGRES_PASSWORD]: ", `could not write Secret "pg-credentials"`,
				"no password was generated for POSTGRES_PASSWORD", `--from-literal=postgres-password="$(openssl rand -base64 24)"`}},
		{name: "a Secret that turns out to hold another value is still a denial", sts: mysql(),
			funcs: interceptor.Funcs{
				Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
					return apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, "mysql-credentials")
				},
				Get: func(_ context.Context, _ client.WithWatch, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
					s := obj.(*corev1.Secret)
					s.Namespace, s.Name = key.Namespace, key.Name
					s.Data = map[string][]byte{"mysql-root-password": []byte("another-value")}
					return nil
				},
			},
			wantAllowed: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := rules.New(engine.DefaultConfig())
			require.NoError(t, err)
			reg := prometheus.NewRegistry()
			metrics, err := webhook.NewMetrics(reg)
			require.NoError(t, err)
			lk := lookuptest.MustObjects(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: tc.sts.Namespace, Name: "mysql"},
				Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "mysql"}}})
			h := (&webhook.Handlers{
				Engine:             func() *engine.Engine { return e },
				Lookup:             func() engine.Lookup { return lk },
				Secrets:            fake.NewClientBuilder().WithInterceptorFuncs(tc.funcs).Build(),
				Metrics:            metrics,
				SecretWriteTimeout: 100 * time.Millisecond,
			}).Webhooks()

			start := time.Now()
			r := serve(t, h[webhook.MutateStatefulSetPath], review(t, admissionv1.Create, statefulSetGVK(), tc.sts, nil))
			if tc.maxTime > 0 {
				assert.Less(t, time.Since(start), tc.maxTime, "the write is bounded by SecretWriteTimeout")
			}
			require.Equal(t, tc.wantAllowed, r.Allowed, "result: %+v", r.Result)
			if !tc.wantAllowed {
				require.NotNil(t, r.Result)
				assert.Equal(t, int32(422), r.Result.Code, "a decision, not an error")
				assert.Contains(t, r.Result.Message, `already holds a different value under key "mysql-root-password"`)
				assert.Contains(t, r.Result.Message, "[rule: password-secret-ref]")
				assert.NotContains(t, r.Result.Message, "another-value")
				assert.NotContains(t, r.Result.Message, movedPassword)
				assert.Empty(t, r.Patch)
				return
			}
			var patch []map[string]any
			if len(r.Patch) > 0 {
				require.NoError(t, json.Unmarshal(r.Patch, &patch))
			}
			var envOps int
			for _, op := range patch {
				if strings.Contains(op["path"].(string), "/env") {
					envOps++
				}
			}
			if tc.wantMoved {
				assert.Equal(t, 1, envOps)
			} else {
				assert.Zero(t, envOps, "no patch for an env var whose Secret was not written: %s", r.Patch)
				assert.NotEmpty(t, patch, "the other defaults are still applied")
			}
			all := strings.Join(r.Warnings, "\n")
			found := false
			for _, w := range r.Warnings {
				ok := true
				for _, part := range tc.wantWarn {
					ok = ok && strings.Contains(w, part)
				}
				found = found || ok
			}
			assert.True(t, found, "no warning holds all of %q:\n%s", tc.wantWarn, all)
			if !tc.wantMoved {
				assert.NotContains(t, all, "changed by stsguard: moved", "a change that was not made is not reported as made")
				assert.NotContains(t, all, "changed by stsguard: POSTGRES_PASSWORD")
			}
			for _, form := range []string{movedPassword, base64.StdEncoding.EncodeToString([]byte(movedPassword))} {
				assert.NotContains(t, all, form, "the value never appears in a warning")
				assert.NotContains(t, string(r.Patch), form)
			}
			want := 0.0
			if tc.wantError {
				want = 1
			}
			assert.Equal(t, want, counter(t, reg, "stsguard_admission_errors_total", map[string]string{"kind": "StatefulSet", "reason": "secret-write"}))
		})
	}
}

// The deadline defaults to 2 s, well under the 5 s timeoutSeconds of the
// webhook configurations in deploy/base.
func TestDefaultSecretWriteTimeout(t *testing.T) {
	assert.Equal(t, 2*time.Second, webhook.DefaultSecretWriteTimeout)
}
