package deploy

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	wgpolicyv1alpha2 "github.com/stsguard/stsguard/apis/wgpolicyk8s/v1alpha2"
	"github.com/stsguard/stsguard/background"
	"github.com/stsguard/stsguard/server"
	"github.com/stsguard/stsguard/test/harness"
	"github.com/stsguard/stsguard/webhook"
)

// headless returns a headless Service selecting app=name.
func headless(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  map[string]string{"app": name},
			Ports:     []corev1.ServicePort{{Name: "mysql", Port: 3306}},
		},
	}
}

// mysql returns a StatefulSet named name with its root password as a
// literal value, which password-secret-ref moves into a Secret.
func mysql(ns, name, serviceName string) *appsv1.StatefulSet {
	labels := map[string]string{"app": name}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: serviceName,
			Replicas:    ptr.To[int32](1),
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "mysql", Image: "mysql:8.4",
					Env: []corev1.EnvVar{{Name: "MYSQL_ROOT_PASSWORD", Value: "s3cr3t-Literal-value"}},
				}}},
			},
		},
	}
}

// requests returns controller-runtime's count of admission requests stsguard
// answered on path (all status codes).
func requests(t *testing.T, path string) float64 {
	t.Helper()
	return sample(t, "controller_runtime_webhook_requests_total", "webhook", path)
}

// deploy/base applies cleanly to a real apiserver: the Deployment passes
// the restricted Pod Security Standard of its Namespace without a warning.
// stsguard then runs as the rendered ServiceAccount with the rendered
// ClusterRole and policy: its informers sync (read access is enough), the
// credentials Secret of password-secret-ref is written (create is enough),
// and that Secret write is not sent back to stsguard (matchConditions).
func TestRenderedBaseInstallsAndRunsAsItsServiceAccount(t *testing.T) {
	warnings := install(t, "base")
	d, ok := warnings["*v1.Deployment/stsguard"]
	require.True(t, ok, "the Deployment was created")
	assert.Empty(t, d, "the Deployment must meet the restricted Pod Security Standard")
	c, _ := admin(t)
	ctx := context.Background()

	cm := &corev1.ConfigMap{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "stsguard-system", Name: "stsguard-policy"}, cm))
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(policyFile, []byte(cm.Data["policy.yaml"]), 0o600))

	// The background audit too, its Lease where $POD_NAMESPACE puts it, with
	// the PolicyReport API installed.
	_, err := envtest.InstallCRDs(cp.Config, envtest.CRDInstallOptions{Paths: []string{
		filepath.Join(harness.Root(), "charts", "stsguard", "files", "crds", "wgpolicyk8s.io_policyreports.yaml")}})
	require.NoError(t, err)
	serve(t, server.Options{RESTConfig: asServiceAccount(), CertDir: cp.Webhook.LocalServingCertDir, ConfigFile: policyFile,
		BackgroundAudit: &background.Options{LeaseNamespace: "stsguard-system", Interval: 2 * time.Second}})

	ns := harness.Namespace(t, c)
	require.NoError(t, c.Create(ctx, headless(ns, "db")))
	before := requests(t, webhook.ValidateSecretPath)
	sts := mysql(ns, "db", "db")
	require.NoError(t, c.Create(ctx, sts))
	env := sts.Spec.Template.Spec.Containers[0].Env[0]
	assert.Empty(t, env.Value, "the literal password must be gone from the stored StatefulSet")
	require.NotNil(t, env.ValueFrom)
	require.NotNil(t, env.ValueFrom.SecretKeyRef)
	sec := &corev1.Secret{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: env.ValueFrom.SecretKeyRef.Name}, sec), "stsguard's ServiceAccount created the Secret")
	assert.Equal(t, "stsguard", sec.Labels["app.kubernetes.io/managed-by"])
	assert.Equal(t, before, requests(t, webhook.ValidateSecretPath), "stsguard's own Secret write must not be sent to stsguard")

	// The same Secret written by anyone else is checked.
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"}, StringData: map[string]string{"k": "v"}}
	require.NoError(t, c.Create(ctx, other))
	assert.Equal(t, before+1, requests(t, webhook.ValidateSecretPath))
	assert.NotContains(t, logs.String(), "s3cr3t-Literal-value")

	// The background audit, as the ServiceAccount: it holds its Lease and
	// writes the namespace's report (the StatefulSet has no readinessProbe).
	harness.Eventually(t, "the background audit's report", func() bool {
		r := &unstructured.Unstructured{}
		r.SetGroupVersionKind(wgpolicyv1alpha2.SchemeGroupVersion.WithKind("PolicyReport"))
		if c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "stsguard"}, r) != nil {
			return false
		}
		warn, _, _ := unstructured.NestedInt64(r.Object, "summary", "warn")
		return warn > 0
	}, 30*time.Second)
	var lease coordinationv1.Lease
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "stsguard-system", Name: background.DefaultLeaseName}, &lease))
	assert.NotEmpty(t, ptr.Deref(lease.Spec.HolderIdentity, ""))
}

// With nothing behind the webhook URL and every webhook failing closed,
// kube-system and stsguard-system still take StatefulSet, Service and
// Secret writes, and so does stsguard's own ServiceAccount anywhere; other
// namespaces are blocked, which shows the webhooks are in the path. With
// the shipped failurePolicy (Ignore) nothing is blocked.
func TestDownBackendDoesNotBlockSystemNamespacesOrStsguard(t *testing.T) {
	install(t, "base")
	conn, err := net.Dial("tcp", net.JoinHostPort(cp.Webhook.LocalServingHost, strconv.Itoa(cp.Webhook.LocalServingPort)))
	if err == nil {
		conn.Close()
		require.FailNow(t, "something listens on the webhook port; this test needs the backend down")
	}
	c, _ := admin(t)
	sa, _, err := harness.NewClient(asServiceAccount())
	require.NoError(t, err)
	ctx := context.Background()
	ns := harness.Namespace(t, c)

	objects := func(ns, name string) []client.Object {
		return []client.Object{
			headless(ns, name),
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: map[string]string{"password": "x"}},
			mysql(ns, name, name),
		}
	}
	t.Run("failurePolicy Fail", func(t *testing.T) {
		setWebhooks(t, failurePolicy(admissionregistrationv1.Fail))
		for _, sys := range []string{"kube-system", "stsguard-system"} {
			for _, o := range objects(sys, "down-"+ns) {
				assert.NoError(t, c.Create(ctx, o), "%T in %s", o, sys)
			}
		}
		for _, o := range objects(ns, "blocked") {
			err := c.Create(ctx, o)
			require.Error(t, err, "%T in %s: the webhook must be in the path", o, ns)
			assert.True(t, apierrors.IsInternalError(err) || strings.Contains(err.Error(), "failed calling webhook"), "%T: %v", o, err)
		}
		// stsguard's own writes never wait on stsguard.
		assert.NoError(t, sa.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-credentials"}, StringData: map[string]string{"password": "x"}}))
	})
	t.Run("shipped failurePolicy", func(t *testing.T) {
		// The apiserver sees the webhook configurations put back (the
		// cleanup of the subtest before) a moment after they are written.
		harness.Eventually(t, "the shipped webhook configurations in force", func() bool {
			return c.Create(ctx, headless(ns, "probe"), client.DryRunAll) == nil
		})
		for _, o := range objects(ns, "admitted") {
			assert.NoError(t, c.Create(ctx, o), "%T: the shipped webhooks fail open", o)
		}
	})
}

// certManagerCRDs returns the directory of cert-manager's CRDs in the
// module cache: those of the version go.mod requires, whose Go types the
// render tests decode into.
func certManagerCRDs(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	require.NoError(t, err, "go list -m github.com/cert-manager/cert-manager")
	return filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds")
}

// The Issuers and Certificates of deploy/cert-manager are accepted by
// cert-manager's own CRDs (OpenAPI schema and CEL rules) on a real
// apiserver, with strict field validation: no field is unknown or dropped.
func TestCertManagerOverlayIsAcceptedByCertManagersCRDs(t *testing.T) {
	_, err := envtest.InstallCRDs(cp.Config, envtest.CRDInstallOptions{Paths: []string{certManagerCRDs(t)}, ErrorIfPathMissing: true})
	require.NoError(t, err)
	install(t, "base")
	w := &harness.Warnings{}
	cfg := rest.CopyConfig(cp.Config)
	cfg.WarningHandlerWithContext = w
	c, err := client.New(cfg, client.Options{Scheme: deployScheme(t)})
	require.NoError(t, err)
	ctx := context.Background()
	ns := harness.Namespace(t, c) // the names are fixed: a fresh namespace per run
	n := 0
	for _, o := range render(t, "cert-manager").objs {
		if o.GetObjectKind().GroupVersionKind().Group != cmv1.SchemeGroupVersion.Group {
			continue
		}
		o.SetNamespace(ns)
		n++
		w.Take()
		require.NoError(t, c.Create(ctx, o, client.FieldValidation("Strict")), "%T %s", o, o.GetName())
		assert.Empty(t, w.Take(), "%T %s", o, o.GetName())
	}
	assert.Equal(t, 4, n, "two Issuers and two Certificates")
}
