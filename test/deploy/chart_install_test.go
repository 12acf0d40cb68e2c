package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/cert"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stsguard/stsguard/certs"
	"github.com/stsguard/stsguard/server"
	"github.com/stsguard/stsguard/test/harness"
)

// chartQuiet are the namespaces of the test cluster that the installed
// webhooks must leave alone: nothing listens behind the chart's Service
// there (kwok runs no containers), so a write the webhooks matched would
// have the apiserver call a Service IP in vain. The tests write only in
// these.
var chartQuiet = []any{"default", "kube-public", "kube-node-lease", "stsguard-system", "stsguard-cm"}

// The chart installed with `helm install` on the local cluster (apiserver,
// controllers, scheduler and kwok's node): every object it renders is
// created, the Deployment's pods run under the restricted Pod Security
// Standard and become available; then `helm upgrade` from the previous
// chart version to this one keeps the caBundle and the certificates (no
// webhook outage), and `helm uninstall` takes the webhook configurations
// away. Once with the default certificates (self-managed, --manage-certs)
// and once with cert-manager.
func TestChartOnTheCluster(t *testing.T) {
	cl, err := harness.StartCluster()
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, cl.Stop()) })
	c, err := client.New(cl.Config, client.Options{Scheme: deployScheme(t)})
	require.NoError(t, err)
	ctx := context.Background()
	// envtest registered deploy/base's webhook configurations, named as the
	// chart names them; the chart installs its own.
	require.NoError(t, c.Delete(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "stsguard"}}))
	require.NoError(t, c.Delete(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "stsguard"}}))

	prev, prevMeta, found := previousChart(t)
	cur := readChartMeta(t, must(os.ReadFile(filepath.Join(chartDir(), "Chart.yaml"))))
	if found {
		t.Logf("upgrading from chart %s (appVersion %s) to %s", prevMeta.Version, prevMeta.AppVersion, cur.Version)
	} else {
		// The first chart version: upgrade from the same chart running an
		// older image, which rolls the Deployment as a release does.
		t.Logf("no earlier chart version than %s in git history: upgrading from it with another image tag", cur.Version)
	}

	t.Run("self-managed", func(t *testing.T) {
		// The Namespace as deploy/base has it: restricted Pod Security,
		// enforced, so pods that break it are never created.
		nsObjs, err := harness.DecodeFile(filepath.Join(harness.Root(), "deploy", "base", "namespace.yaml"))
		require.NoError(t, err)
		require.NoError(t, c.Create(ctx, nsObjs[0]))
		values := map[string]any{"webhooks": map[string]any{"excludedNamespaces": chartQuiet}}
		h := chartRelease{t: t, cl: cl, c: c, name: "stsguard", namespace: "stsguard-system", values: values}
		h.install(prev, found)

		// stsguard --manage-certs, as the chart runs it: its certificate
		// manager, as the chart's ServiceAccount (so the chart's RBAC is
		// what allows it), creates the Secret and injects the CA.
		sa := rest.CopyConfig(cl.Config)
		sa.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:stsguard-system:stsguard",
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:stsguard-system", "system:authenticated"}}
		saClient, _, err := harness.NewClient(sa)
		require.NoError(t, err)
		m, err := certs.NewManager(certs.ManagerOptions{Client: saClient, Namespace: "stsguard-system", SecretName: server.DefaultCertSecret,
			WebhookConfigurationName: "stsguard", DNSNames: server.DefaultDNSNames(), Log: logr.Discard()})
		require.NoError(t, err)
		mctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- m.Start(mctx) }()
		h.eventually("--manage-certs created its Secret and injected its CA into every webhook", func() bool {
			return h.certState().complete()
		})
		stop()
		require.NoError(t, <-done)

		h.upgrade(prev, found)

		// The upgraded release's stsguard, as its pods start: its manager
		// watches both webhook configurations (the chart's RBAC allows
		// list and watch by name) and puts the CA into a webhook that lacks
		// it (one an upgrade adds) at once, not at its next reconcile.
		watch, err := kubernetes.NewForConfig(sa)
		require.NoError(t, err)
		m, err = certs.NewManager(certs.ManagerOptions{Client: saClient, Watch: watch, Namespace: "stsguard-system", SecretName: server.DefaultCertSecret,
			WebhookConfigurationName: "stsguard", DNSNames: server.DefaultDNSNames(), Log: logr.Discard()})
		require.NoError(t, err)
		mctx, stop = context.WithCancel(ctx)
		go func() { done <- m.Start(mctx) }()
		h.eventually("--manage-certs injected its CA into every webhook of the upgraded chart", func() bool {
			return h.certState().complete()
		})
		dropCABundle(t, c, h.name, "statefulsets-update.validate.stsguard.io")
		harness.Eventually(t, "the CA put back into the webhook that lost it, within seconds", func() bool {
			return h.certState().complete()
		}, 20*time.Second)
		stop()
		require.NoError(t, <-done)
		h.uninstall()
	})

	t.Run("cert-manager", func(t *testing.T) {
		_, err := envtest.InstallCRDs(cl.Config, envtest.CRDInstallOptions{Paths: []string{certManagerCRDs(t)}, ErrorIfPathMissing: true})
		require.NoError(t, err)
		values := map[string]any{
			"certificates": map[string]any{"mode": "cert-manager"},
			"webhooks":     map[string]any{"excludedNamespaces": chartQuiet},
		}
		// No Namespace beforehand: helm install --create-namespace.
		h := chartRelease{t: t, cl: cl, c: c, name: "stsguard-cm", namespace: "stsguard-cm", values: values}
		h.install(prev, found, "--create-namespace")
		for _, name := range []string{"stsguard-cm-selfsigned", "stsguard-cm-ca"} {
			require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: h.namespace, Name: name}, &cmv1.Issuer{}))
		}

		// What cert-manager and its cainjector would do (no cert-manager
		// runs here): the serving certificate's Secret, and its CA in every
		// webhook named by the inject-ca-from annotation.
		crt, key, err := cert.GenerateSelfSignedCertKey("stsguard-cm.stsguard-cm.svc", nil, nil)
		require.NoError(t, err)
		require.NoError(t, c.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: h.namespace, Name: "stsguard-cm-serving-cert", Annotations: map[string]string{"cert-manager.io/certificate-name": "stsguard-cm-serving-cert"}},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{"tls.crt": crt, "tls.key": key, "ca.crt": crt},
		}))
		mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
		vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "stsguard-cm"}, mwc))
		require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "stsguard-cm"}, vwc))
		for _, o := range []client.Object{mwc, vwc} {
			assert.Equal(t, "stsguard-cm/stsguard-cm-serving-cert", o.GetAnnotations()["cert-manager.io/inject-ca-from"])
		}
		for i := range mwc.Webhooks {
			mwc.Webhooks[i].ClientConfig.CABundle = crt
		}
		for i := range vwc.Webhooks {
			vwc.Webhooks[i].ClientConfig.CABundle = crt
		}
		require.NoError(t, c.Update(ctx, mwc, client.FieldOwner("cert-manager-cainjector")))
		require.NoError(t, c.Update(ctx, vwc, client.FieldOwner("cert-manager-cainjector")))
		require.True(t, h.certState().complete())

		certsBefore := h.certificates()
		h.upgrade(prev, found)
		assert.Equal(t, certsBefore, h.certificates(), "the Certificates and Issuers are the same: cert-manager issues nothing new")
		h.uninstall()
	})
}

// chartRelease is one Helm release of the chart on the test cluster.
type chartRelease struct {
	t               *testing.T
	cl              *harness.Cluster
	c               client.Client
	name, namespace string
	values          map[string]any
	webhooks        int // in both configurations, as install rendered them
}

func (h *chartRelease) helm(args ...string) []byte {
	h.t.Helper()
	out, err := runHelm(h.t, h.cl.Kubeconfig, args...)
	require.NoError(h.t, err, "%s", out)
	return out
}

func (h *chartRelease) eventually(what string, cond func() bool) {
	h.t.Helper()
	harness.Eventually(h.t, what, cond, 60*time.Second)
}

// install installs the previous chart (found) or this one with an older
// image, and checks that every object it renders was created and that the
// Deployment's pods became available.
func (h *chartRelease) install(prev string, found bool, extra ...string) {
	t := h.t
	t.Helper()
	values := h.previousValues(found)
	args := append([]string{"install", h.name, prev, "--namespace", h.namespace, "--values", valuesFile(t, values), "--wait", "--timeout", "2m"}, extra...)
	h.helm(args...)
	out, err := chartTemplate(t, prev, h.name, h.namespace, values)
	require.NoError(t, err)
	objs, err := harness.DecodeWith(deployScheme(t), bytes.NewReader(out))
	require.NoError(t, err)
	ctx := context.Background()
	h.webhooks = len(chartWebhooks(&rendered{objs: objs}))
	for _, want := range objs {
		got := want.DeepCopyObject().(client.Object)
		require.NoError(t, h.c.Get(ctx, client.ObjectKeyFromObject(want), got), "%T %s was created", want, want.GetName())
		assert.Equal(t, h.name, got.GetAnnotations()["meta.helm.sh/release-name"], "%T %s belongs to the release", got, got.GetName())
		switch w := want.(type) {
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			assert.Equal(t, webhookSpecs(w.Webhooks), webhookSpecs(got.(*admissionregistrationv1.MutatingWebhookConfiguration).Webhooks), "the webhooks as rendered")
		case *admissionregistrationv1.ValidatingWebhookConfiguration:
			assert.Equal(t, webhookSpecs(w.Webhooks), webhookSpecs(got.(*admissionregistrationv1.ValidatingWebhookConfiguration).Webhooks), "the webhooks as rendered")
		}
	}
	d := h.deployment()
	assert.EqualValues(t, *d.Spec.Replicas, d.Status.AvailableReplicas, "helm --wait waited for the pods")
	pods := &corev1.PodList{}
	require.NoError(t, h.c.List(ctx, pods, client.InNamespace(h.namespace)))
	assert.Len(t, pods.Items, int(*d.Spec.Replicas))
	for _, p := range pods.Items {
		assert.Equal(t, harness.NodeName, p.Spec.NodeName)
		assert.Equal(t, corev1.PodRunning, p.Status.Phase)
	}
}

// previousValues are the release's values, with an older image tag when
// the previous chart is this one.
func (h *chartRelease) previousValues(found bool) map[string]any {
	if found {
		return h.values
	}
	v := map[string]any{"image": map[string]any{"tag": "v0.0.0-previous"}}
	for k, x := range h.values {
		v[k] = x
	}
	return v
}

// upgrade upgrades the release to this chart while it watches that every
// webhook keeps its caBundle, that the certificate Secret is not touched
// and that the Deployment always has an available replica; then it checks
// that the two charts' renders agree on what the certificates hang on.
func (h *chartRelease) upgrade(prev string, found bool) {
	t := h.t
	t.Helper()
	ctx := context.Background()
	before := h.certState()
	require.True(t, before.complete(), "certificates in place before the upgrade")
	prevImage := container(t, h.deployment()).Image

	var (
		mu       sync.Mutex
		problems []string
		polls    int
	)
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		wait.UntilWithContext(wctx, func(context.Context) {
			now := h.certState()
			d := &appsv1.Deployment{}
			err := h.c.Get(ctx, client.ObjectKey{Namespace: h.namespace, Name: h.name}, d)
			mu.Lock()
			polls++
			if diff := before.diff(now); diff != "" && len(problems) < 10 {
				problems = append(problems, diff)
			}
			if err != nil || d.Status.AvailableReplicas < 1 {
				problems = append(problems, fmt.Sprintf("no available replica (%v)", err))
			}
			mu.Unlock()
		}, 20*time.Millisecond)
	})
	h.helm("upgrade", h.name, chartDir(), "--namespace", h.namespace, "--values", valuesFile(t, h.values), "--wait", "--timeout", "2m")
	stop()
	wg.Wait()
	assert.Empty(t, problems, "during the upgrade (%d checks)", polls)
	assert.Greater(t, polls, 5)
	assert.Empty(t, before.diff(h.certState()), "after the upgrade")
	d := h.deployment()
	if !found {
		assert.NotEqual(t, prevImage, container(t, d).Image, "the upgrade rolled the Deployment")
	}
	assert.EqualValues(t, *d.Spec.Replicas, d.Status.UpdatedReplicas)
	assert.EqualValues(t, *d.Spec.Replicas, d.Status.AvailableReplicas)

	// Rendered, both versions leave the caBundle to whoever writes it,
	// render no certificate Secret, and name the same Secret, webhook
	// configurations and Certificates.
	var renders []*rendered
	for _, chart := range []struct {
		dir    string
		values map[string]any
	}{{prev, h.previousValues(found)}, {chartDir(), h.values}} {
		out, err := chartTemplate(t, chart.dir, h.name, h.namespace, chart.values)
		require.NoError(t, err)
		objs, err := harness.DecodeWith(deployScheme(t), bytes.NewReader(out))
		require.NoError(t, err)
		r := &rendered{objs: objs}
		for _, w := range chartWebhooks(r) {
			assert.Empty(t, w.cc.CABundle, "%s: a rendered caBundle would overwrite the injected one", w.name)
		}
		assert.Empty(t, all[*corev1.Secret](r), "a rendered Secret would replace the certificates")
		renders = append(renders, r)
	}
	h.webhooks = len(chartWebhooks(renders[1]))
	// The upgrade left the webhooks as this chart renders them: no
	// operation or matchCondition of the previous chart's kept on a name
	// both use.
	mutating, validating := harness.WebhookConfigurations(renders[1].objs)
	require.Len(t, mutating, 1)
	require.Len(t, validating, 1)
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	require.NoError(t, h.c.Get(ctx, client.ObjectKeyFromObject(mutating[0]), mwc))
	require.NoError(t, h.c.Get(ctx, client.ObjectKeyFromObject(validating[0]), vwc))
	assert.Equal(t, webhookSpecs(mutating[0].Webhooks), webhookSpecs(mwc.Webhooks), "the mutating webhooks after the upgrade, as rendered")
	assert.Equal(t, webhookSpecs(validating[0].Webhooks), webhookSpecs(vwc.Webhooks), "the validating webhooks after the upgrade, as rendered")
	assert.Equal(t, certNames(t, renders[0]), certNames(t, renders[1]))
}

// certNames is what the certificates of a render hang on: the names of the
// webhook configurations, their injection annotation, the Secret the
// Deployment serves, and the Certificates and Issuers.
func certNames(t *testing.T, r *rendered) []string {
	t.Helper()
	var out []string
	mutating, validating := harness.WebhookConfigurations(r.objs)
	for _, o := range []client.Object{mutating[0], validating[0]} {
		out = append(out, fmt.Sprintf("%T %s %s", o, o.GetName(), o.GetAnnotations()["cert-manager.io/inject-ca-from"]))
	}
	c := container(t, all[*appsv1.Deployment](r)[0])
	if _, manage := arg(c.Args, "manage-certs"); manage {
		out = append(out, "manage-certs "+cmpOr(argValue(c.Args, "cert-secret"), server.DefaultCertSecret))
	}
	for _, v := range all[*appsv1.Deployment](r)[0].Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			out = append(out, "volume "+v.Secret.SecretName)
		}
	}
	for _, x := range all[*cmv1.Certificate](r) {
		out = append(out, fmt.Sprintf("Certificate %s %s %v %s", x.Name, x.Spec.SecretName, x.Spec.DNSNames, x.Spec.IssuerRef.Name))
	}
	for _, x := range all[*cmv1.Issuer](r) {
		out = append(out, "Issuer "+x.Name)
	}
	return out
}

func (h *chartRelease) deployment() *appsv1.Deployment {
	h.t.Helper()
	d := &appsv1.Deployment{}
	require.NoError(h.t, h.c.Get(context.Background(), client.ObjectKey{Namespace: h.namespace, Name: h.name}, d))
	return d
}

// certificates returns the specs of the release's Certificates and Issuers.
func (h *chartRelease) certificates() map[string]any {
	h.t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	crts := &cmv1.CertificateList{}
	require.NoError(h.t, h.c.List(ctx, crts, client.InNamespace(h.namespace)))
	for _, x := range crts.Items {
		out["Certificate/"+x.Name] = x.Spec
	}
	issuers := &cmv1.IssuerList{}
	require.NoError(h.t, h.c.List(ctx, issuers, client.InNamespace(h.namespace)))
	for _, x := range issuers.Items {
		out["Issuer/"+x.Name] = x.Spec
	}
	require.NotEmpty(h.t, out)
	return out
}

// uninstall runs helm uninstall: the webhook configurations go with the
// release; the certificate Secret, written by stsguard or cert-manager and
// not by Helm, stays until the namespace goes.
func (h *chartRelease) uninstall() {
	t := h.t
	t.Helper()
	h.helm("uninstall", h.name, "--namespace", h.namespace, "--wait", "--timeout", "2m")
	ctx := context.Background()
	err := h.c.Get(ctx, client.ObjectKey{Name: h.name}, &admissionregistrationv1.MutatingWebhookConfiguration{})
	assert.True(t, apierrors.IsNotFound(err), "MutatingWebhookConfiguration %s: %v", h.name, err)
	err = h.c.Get(ctx, client.ObjectKey{Name: h.name}, &admissionregistrationv1.ValidatingWebhookConfiguration{})
	assert.True(t, apierrors.IsNotFound(err), "ValidatingWebhookConfiguration %s: %v", h.name, err)
	assert.NoError(t, h.c.Get(ctx, client.ObjectKey{Namespace: h.namespace, Name: h.name + "-serving-cert"}, &corev1.Secret{}))
}

// certState is the release's caBundles, webhook by webhook, and its
// serving certificate Secret.
type certState struct {
	webhooks int // how many the release has
	bundles  map[string]string
	secret   *corev1.Secret
	errs     []string
}

func (h *chartRelease) certState() certState {
	ctx := context.Background()
	s := certState{webhooks: h.webhooks, bundles: map[string]string{}}
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := h.c.Get(ctx, client.ObjectKey{Name: h.name}, mwc); err != nil {
		s.errs = append(s.errs, err.Error())
	}
	for _, w := range mwc.Webhooks {
		s.bundles[w.Name] = string(w.ClientConfig.CABundle)
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := h.c.Get(ctx, client.ObjectKey{Name: h.name}, vwc); err != nil {
		s.errs = append(s.errs, err.Error())
	}
	for _, w := range vwc.Webhooks {
		s.bundles[w.Name] = string(w.ClientConfig.CABundle)
	}
	sec := &corev1.Secret{}
	if err := h.c.Get(ctx, client.ObjectKey{Namespace: h.namespace, Name: h.name + "-serving-cert"}, sec); err != nil {
		s.errs = append(s.errs, err.Error())
	} else {
		s.secret = sec
	}
	return s
}

// complete: both configurations and the Secret exist, and every one of the
// release's webhooks has a caBundle that is the Secret's CA.
func (s certState) complete() bool {
	if len(s.errs) > 0 || s.secret == nil || s.webhooks == 0 || len(s.bundles) != s.webhooks {
		return false
	}
	for _, b := range s.bundles {
		if b == "" || !strings.Contains(string(s.secret.Data["ca.crt"]), strings.TrimSpace(b)) {
			return false
		}
	}
	return true
}

// diff says how now differs from s: a caBundle changed or gone, the Secret
// written (its resourceVersion) or gone.
func (s certState) diff(now certState) string {
	var d []string
	d = append(d, now.errs...)
	for name, b := range s.bundles {
		if now.bundles[name] != b {
			d = append(d, "caBundle of "+name+" changed")
		}
	}
	if now.secret == nil || now.secret.ResourceVersion != s.secret.ResourceVersion {
		d = append(d, "the serving certificate Secret was written or deleted")
	}
	return strings.Join(d, "; ")
}

// webhookSpec is what a webhook does, as rendered and as stored.
type webhookSpec struct {
	Name              string
	Service           *admissionregistrationv1.ServiceReference
	Rules             []admissionregistrationv1.RuleWithOperations
	NamespaceSelector *metav1.LabelSelector
	MatchConditions   []admissionregistrationv1.MatchCondition
	FailurePolicy     *admissionregistrationv1.FailurePolicyType
	SideEffects       *admissionregistrationv1.SideEffectClass
	TimeoutSeconds    *int32
}

func webhookSpecs[W admissionregistrationv1.MutatingWebhook | admissionregistrationv1.ValidatingWebhook](ws []W) []webhookSpec {
	var out []webhookSpec
	for _, w := range ws {
		switch x := any(w).(type) {
		case admissionregistrationv1.MutatingWebhook:
			out = append(out, webhookSpec{x.Name, x.ClientConfig.Service, x.Rules, x.NamespaceSelector, x.MatchConditions, x.FailurePolicy, x.SideEffects, x.TimeoutSeconds})
		case admissionregistrationv1.ValidatingWebhook:
			out = append(out, webhookSpec{x.Name, x.ClientConfig.Service, x.Rules, x.NamespaceSelector, x.MatchConditions, x.FailurePolicy, x.SideEffects, x.TimeoutSeconds})
		}
	}
	return out
}

// previousChart returns the directory of the chart of the previous release
// (harness.PreviousRelease: the chart as it last was at the version before
// the current one), that version's metadata, and true. It returns this
// chart and false when git has no earlier version: a first version, no git,
// or a shallow clone without the commit.
func previousChart(t *testing.T) (string, chartMeta, bool) {
	t.Helper()
	commit, meta, ok := harness.PreviousRelease()
	if !ok {
		t.Logf("no earlier chart version in git history: upgrading from this chart")
		return chartDir(), readChartMeta(t, must(os.ReadFile(filepath.Join(chartDir(), "Chart.yaml")))), false
	}
	src, err := harness.CheckoutAt(commit, t.TempDir())
	require.NoError(t, err)
	return filepath.Join(src, "charts", "stsguard"), chartMeta(meta), true
}
