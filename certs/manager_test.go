package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/cert"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

const (
	testNS     = "stsguard-system"
	testSecret = "stsguard-serving-cert"
	caLife     = 30 * 24 * time.Hour
	certLife   = 3 * 24 * time.Hour
)

var testNames = []string{"stsguard.stsguard-system.svc", "127.0.0.1"}

// webhookConfigurations returns stsguard's two configurations with 2 and
// 3 webhooks and no caBundle, as deploy/ renders them.
func webhookConfigurations() []client.Object {
	m := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "stsguard"}}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "stsguard"}}
	for _, n := range []string{"a", "b"} {
		m.Webhooks = append(m.Webhooks, admissionregistrationv1.MutatingWebhook{Name: n + ".stsguard.io"})
	}
	for _, n := range []string{"c", "d", "e"} {
		v.Webhooks = append(v.Webhooks, admissionregistrationv1.ValidatingWebhook{Name: n + ".stsguard.io"})
	}
	return []client.Object{m, v}
}

func newFakeClient(objs ...client.Object) client.WithWatch {
	return fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...).Build()
}

func newTestManager(t *testing.T, c client.Client, clk *clocktesting.FakeClock, names ...string) *Manager {
	t.Helper()
	if len(names) == 0 {
		names = testNames
	}
	m, err := NewManager(ManagerOptions{
		Client: c, Namespace: testNS, SecretName: testSecret, WebhookConfigurationName: "stsguard",
		DNSNames: names, CAValidity: caLife, CertValidity: certLife, Log: logr.Discard(),
	})
	require.NoError(t, err)
	m.clock = clk
	return m
}

func getSecret(t *testing.T, c client.Client) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	require.NoError(t, c.Get(context.Background(), client.ObjectKey{Namespace: testNS, Name: testSecret}, s))
	return s
}

// caBundles returns the caBundle of every webhook of both configurations.
func caBundles(t *testing.T, c client.Client) [][]byte {
	t.Helper()
	ctx := context.Background()
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "stsguard"}, m))
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "stsguard"}, v))
	var out [][]byte
	for _, w := range m.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	for _, w := range v.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	return out
}

func pemCerts(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	cs, err := cert.ParseCertsPEM(b)
	require.NoError(t, err)
	return cs
}

// checkServing asserts what must hold after every reconcile: the served
// certificate is the Secret's, every webhook trusts ca.crt, and the served
// certificate verifies against that caBundle at the clock's time for every
// name, without outliving its CA.
func checkServing(t *testing.T, c client.Client, m *Manager, now time.Time) {
	t.Helper()
	s := getSecret(t, c)
	served, err := m.GetCertificate(nil)
	require.NoError(t, err)
	pem, err := cert.EncodeCertificates(served.Leaf)
	require.NoError(t, err)
	require.Equal(t, string(s.Data[CertFile]), string(pem), "the served certificate is the Secret's")
	bundles := caBundles(t, c)
	for _, b := range bundles {
		require.Equal(t, string(s.Data[CAFile]), string(b), "every webhook trusts ca.crt")
	}
	pool := x509.NewCertPool()
	for _, ca := range pemCerts(t, bundles[0]) {
		pool.AddCert(ca)
	}
	for _, n := range testNames {
		chains, err := served.Leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		require.NoError(t, err, "at %s, %s", now, n)
		assert.False(t, served.Leaf.NotAfter.After(chains[0][1].NotAfter), "the serving certificate outlives its CA")
	}
}

// A hundred days, reconciled every hour: the serving certificate and the CA
// are each renewed at two thirds of their life, the previous CA stays
// trusted until it expires, and at no hour does the served certificate
// fail to verify against the published caBundle.
func TestManagerRotatesForAHundredDays(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	c := newFakeClient(webhookConfigurations()...)
	m := newTestManager(t, c, clk)
	ctx := context.Background()

	leaves, cas := map[string]bool{}, map[string]bool{}
	maxTrusted := 0
	for end := clk.Now().Add(100 * 24 * time.Hour); clk.Now().Before(end); clk.Step(time.Hour) {
		require.NoError(t, m.Reconcile(ctx))
		checkServing(t, c, m, clk.Now())
		s := getSecret(t, c)
		leaves[string(s.Data[CertFile])] = true
		trusted := pemCerts(t, s.Data[CAFile])
		cas[string(trusted[0].Raw)] = true
		maxTrusted = max(maxTrusted, len(trusted))
		for _, ca := range trusted[1:] {
			assert.True(t, clk.Now().Before(ca.NotAfter), "an expired CA is dropped from ca.crt")
		}
	}
	// 100 days / (2/3 of 3 days) = 50 serving certificates, give or take
	// the CA-driven re-issues; 100 / 20 = 5 CAs.
	assert.InDelta(t, 55, len(leaves), 6, "serving certificates issued")
	assert.Len(t, cas, 5, "CAs issued")
	assert.Equal(t, 2, maxTrusted, "a rotated CA is trusted beside the new one, never more")
}

// After a CA rotation the served certificate stays the one signed by the
// previous CA until the new CA has been in every caBundle for the
// propagation delay; then it is re-issued by the new CA.
func TestManagerWaitsForTheNewCAToPropagate(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	c := newFakeClient(webhookConfigurations()...)
	m := newTestManager(t, c, clk)
	ctx := context.Background()
	require.NoError(t, m.Reconcile(ctx))
	first := pemCerts(t, getSecret(t, c).Data[CAFile])[0]

	// Hour by hour, as Start would, until the CA rotates.
	var s *corev1.Secret
	var trusted []*x509.Certificate
	for len(trusted) < 2 {
		clk.Step(time.Hour)
		require.NoError(t, m.Reconcile(ctx))
		s = getSecret(t, c)
		trusted = pemCerts(t, s.Data[CAFile])
	}
	assert.Equal(t, first.Raw, trusted[1].Raw, "the previous CA stays trusted")
	leaf := pemCerts(t, s.Data[CertFile])[0]
	require.NoError(t, leaf.CheckSignatureFrom(first), "still served: the certificate of the previous CA")

	require.NoError(t, m.Reconcile(ctx)) // same instant: not propagated yet
	assert.Equal(t, s.Data[CertFile], getSecret(t, c).Data[CertFile])
	checkServing(t, c, m, clk.Now())

	clk.Step(m.propagation())
	require.NoError(t, m.Reconcile(ctx))
	leaf = pemCerts(t, getSecret(t, c).Data[CertFile])[0]
	assert.NoError(t, leaf.CheckSignatureFrom(trusted[0]), "re-issued by the new CA")
	checkServing(t, c, m, clk.Now())
}

// Two replicas racing: the first one's update conflicts with the second's
// (409 on the resourceVersion it read); it reads the winner's Secret and
// serves the same certificate instead of issuing its own.
func TestManagerReplicasAgreeThroughResourceVersion(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	ctx := context.Background()
	c := newFakeClient(webhookConfigurations()...)
	second := newTestManager(t, c, clk)
	require.NoError(t, second.Reconcile(ctx))

	raced := false
	racing := interceptor.NewClient(c, interceptor.Funcs{
		Update: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if _, ok := obj.(*corev1.Secret); ok && !raced {
				raced = true
				require.NoError(t, second.Reconcile(ctx)) // the other replica writes first
			}
			return cl.Update(ctx, obj, opts...)
		},
	})
	first := newTestManager(t, racing, clk)
	clk.Step(certLife * 3 / 4) // the serving certificate is due
	before := getSecret(t, c).ResourceVersion
	require.NoError(t, first.Reconcile(ctx))
	require.True(t, raced)

	s := getSecret(t, c)
	assert.NotEqual(t, before, s.ResourceVersion)
	for _, m := range []*Manager{first, second} {
		checkServing(t, c, m, clk.Now())
	}
	a, _ := first.GetCertificate(nil)
	b, _ := second.GetCertificate(nil)
	assert.Equal(t, a.Leaf.Raw, b.Leaf.Raw, "both replicas serve the winner's certificate")
}

// Replicas that start together race on the create: the loser gets
// AlreadyExists, reads the winner's Secret and serves it.
func TestManagerReplicasRaceOnCreate(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	ctx := context.Background()
	c := newFakeClient(webhookConfigurations()...)
	second := newTestManager(t, c, clk)
	raced := false
	racing := interceptor.NewClient(c, interceptor.Funcs{
		Create: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*corev1.Secret); ok && !raced {
				raced = true
				require.NoError(t, second.Reconcile(ctx))
			}
			return cl.Create(ctx, obj, opts...)
		},
	})
	first := newTestManager(t, racing, clk)
	require.NoError(t, first.Reconcile(ctx))
	require.True(t, raced)
	a, _ := first.GetCertificate(nil)
	b, _ := second.GetCertificate(nil)
	assert.Equal(t, a.Leaf.Raw, b.Leaf.Raw)
	checkServing(t, c, first, clk.Now())
}

func TestManagerRecovers(t *testing.T) {
	ctx := context.Background()
	t.Run("unusable Secret is replaced", func(t *testing.T) {
		clk := clocktesting.NewFakeClock(time.Now())
		junk := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: testSecret},
			Data: map[string][]byte{CAFile: []byte("not a certificate")}}
		c := newFakeClient(append(webhookConfigurations(), junk)...)
		m := newTestManager(t, c, clk)
		require.NoError(t, m.Reconcile(ctx))
		checkServing(t, c, m, clk.Now())
	})
	t.Run("webhook configurations applied after the Deployment", func(t *testing.T) {
		clk := clocktesting.NewFakeClock(time.Now())
		c := newFakeClient()
		m := newTestManager(t, c, clk)
		require.NoError(t, m.Reconcile(ctx), "a missing configuration is waited for, not an error")
		_, err := m.GetCertificate(nil)
		require.NoError(t, err, "the certificate is served meanwhile")
		for _, o := range webhookConfigurations() {
			require.NoError(t, c.Create(ctx, o))
		}
		require.NoError(t, m.Reconcile(ctx))
		checkServing(t, c, m, clk.Now())
	})
	t.Run("caBundle overwritten by a re-apply is restored", func(t *testing.T) {
		clk := clocktesting.NewFakeClock(time.Now())
		c := newFakeClient(webhookConfigurations()...)
		m := newTestManager(t, c, clk)
		require.NoError(t, m.Reconcile(ctx))
		v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "stsguard"}, v))
		v.Webhooks[1].ClientConfig.CABundle = nil
		require.NoError(t, c.Update(ctx, v))
		require.NoError(t, m.Reconcile(ctx))
		checkServing(t, c, m, clk.Now())
	})
	t.Run("a new --dns-name re-issues the serving certificate", func(t *testing.T) {
		clk := clocktesting.NewFakeClock(time.Now())
		c := newFakeClient(webhookConfigurations()...)
		require.NoError(t, newTestManager(t, c, clk, testNames[0]).Reconcile(ctx))
		m := newTestManager(t, c, clk)
		require.NoError(t, m.Reconcile(ctx))
		checkServing(t, c, m, clk.Now())
	})
}

func TestNewManagerRejectsBadOptions(t *testing.T) {
	c := newFakeClient()
	ok := ManagerOptions{Client: c, Namespace: testNS, SecretName: testSecret, WebhookConfigurationName: "stsguard", DNSNames: testNames}
	for _, tc := range []struct {
		name   string
		change func(*ManagerOptions)
		want   string
	}{
		{"no client", func(o *ManagerOptions) { o.Client = nil }, "no API client"},
		{"no namespace", func(o *ManagerOptions) { o.Namespace = "" }, "namespace and name are required"},
		{"no webhook configuration", func(o *ManagerOptions) { o.WebhookConfigurationName = "" }, "--webhook-configuration-name"},
		{"no names", func(o *ManagerOptions) { o.DNSNames = nil }, "--dns-name"},
		{"negative validity", func(o *ManagerOptions) { o.CertValidity = -time.Hour }, "must be positive"},
		{"serving outlives CA", func(o *ManagerOptions) { o.CAValidity, o.CertValidity = time.Hour, 2*time.Hour }, "must not exceed the CA validity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.change(&o)
			_, err := NewManager(o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	m, err := NewManager(ok)
	require.NoError(t, err)
	assert.Equal(t, DefaultCAValidity, m.o.CAValidity)
	assert.Equal(t, DefaultValidity, m.o.CertValidity)
	assert.Equal(t, time.Minute, m.o.Interval)
	assert.Error(t, m.Ready(nil), "not ready before a certificate is loaded")
}

// A caBundle someone reset (an old bundle applied from Git, say) and put
// back by the manager counts as not propagated until the propagation delay
// after that write, even when the new CA has been the signing CA for
// longer: with Watch, the next reconcile comes ~0.1 s after the write.
func TestManagerWaitsForARestoredCABundleToPropagate(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	c := newFakeClient(webhookConfigurations()...)
	m := newTestManager(t, c, clk)
	ctx := context.Background()
	require.NoError(t, m.Reconcile(ctx))
	for len(pemCerts(t, getSecret(t, c).Data[CAFile])) < 2 {
		clk.Step(time.Hour)
		require.NoError(t, m.Reconcile(ctx))
	}
	served := getSecret(t, c).Data[CertFile]
	half := m.propagation() / 2

	clk.Step(half)
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "stsguard"}, mwc))
	mwc.Webhooks[0].ClientConfig.CABundle = nil
	require.NoError(t, c.Update(ctx, mwc))
	require.NoError(t, m.Reconcile(ctx)) // puts it back

	clk.Step(half) // the new CA signs since a propagation delay, the bundle was written half of one ago
	require.NoError(t, m.Reconcile(ctx))
	assert.Equal(t, served, getSecret(t, c).Data[CertFile], "not re-issued before the restored caBundle propagated")

	clk.Step(half)
	require.NoError(t, m.Reconcile(ctx))
	assert.NotEqual(t, served, getSecret(t, c).Data[CertFile], "re-issued by the new CA")
	checkServing(t, c, m, clk.Now())
}

// With Watch, a change of a webhook configuration is reconciled at once
// (Interval here is an hour); without RBAC for the watch, Start says so
// once and goes on with Interval.
func TestManagerWatch(t *testing.T) {
	cases := []struct {
		name      string
		forbidden bool
	}{
		{"a webhook loses its caBundle", false},
		{"list and watch forbidden", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClient(webhookConfigurations()...)
			watched := kubefake.NewClientset(webhookConfigurations()[0])
			if tc.forbidden {
				watched.PrependReactor("list", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "admissionregistration.k8s.io", Resource: a.GetResource().Resource}, "", errors.New("RBAC"))
				})
			}
			var mu sync.Mutex
			var logged []string
			log := funcr.New(func(prefix, args string) {
				mu.Lock()
				defer mu.Unlock()
				logged = append(logged, args)
			}, funcr.Options{})
			m, err := NewManager(ManagerOptions{
				Client: c, Watch: watched, Namespace: testNS, SecretName: testSecret, WebhookConfigurationName: "stsguard",
				DNSNames: testNames, Interval: time.Hour, Log: log,
			})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- m.Start(ctx) }()
			defer func() { cancel(); require.NoError(t, <-done) }()
			complete := func() bool {
				for _, b := range caBundles(t, c) {
					if len(b) == 0 {
						return false
					}
				}
				return true
			}
			require.NoError(t, wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true,
				func(context.Context) (bool, error) { return complete(), nil }), "the first reconcile")

			if tc.forbidden {
				require.NoError(t, wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
					mu.Lock()
					defer mu.Unlock()
					n := 0
					for _, l := range logged {
						if strings.Contains(l, "not permitted to watch the webhook configurations") {
							n++
						}
					}
					return n == 1, nil
				}), "said once that the watch is not permitted")
				return
			}
			mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
			require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "stsguard"}, mwc))
			mwc.Webhooks[1].ClientConfig.CABundle = nil
			require.NoError(t, c.Update(ctx, mwc))
			// The watched API sees the change (here a separate fake).
			changed := webhookConfigurations()[0].(*admissionregistrationv1.MutatingWebhookConfiguration)
			changed.Labels = map[string]string{"touched": "yes"}
			_, err = watched.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, changed, metav1.UpdateOptions{})
			require.NoError(t, err)
			assert.NoError(t, wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true,
				func(context.Context) (bool, error) { return complete(), nil }), "the caBundle put back well before the hourly reconcile")
		})
	}
}
