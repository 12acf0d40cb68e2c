package deploy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/cert"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/stsguard/stsguard/certs"
	"github.com/stsguard/stsguard/server"
	"github.com/stsguard/stsguard/test/harness"
)

// Validities short enough to see the CA rotate once and the serving
// certificate several times within seconds.
const (
	testCAValidity   = 12 * time.Second
	testCertValidity = 4 * time.Second
)

// expiryMetric is stsguard_certificate_expiry_timestamp_seconds as served
// with --manage-certs, given the CA's and the serving certificate's
// NotAfter in Unix seconds.
const expiryMetric = `
# HELP stsguard_certificate_expiry_timestamp_seconds NotAfter of the certificate stsguard serves with (certificate=serving) and of the CA that signed it when stsguard manages it (certificate=ca), in seconds since the Unix epoch.
# TYPE stsguard_certificate_expiry_timestamp_seconds gauge
stsguard_certificate_expiry_timestamp_seconds{certificate="ca"} %d
stsguard_certificate_expiry_timestamp_seconds{certificate="serving"} %d
`

// rotations follows the managed Secret: every serving certificate and every
// signing CA it has held.
type rotations struct {
	leaves, cas map[string]bool
	leafByCA    map[string]bool // serving certificates signed by a CA other than the first
	first       string
}

func (r *rotations) observe(sec *corev1.Secret) {
	cas, err := cert.ParseCertsPEM(sec.Data[certs.CAFile])
	if err != nil {
		return
	}
	signing := string(cas[0].Raw)
	if r.first == "" {
		r.first = signing
	}
	r.cas[signing] = true
	r.leaves[string(sec.Data[certs.CertFile])] = true
	if leaf, err := cert.ParseCertsPEM(sec.Data[certs.CertFile]); err == nil && leaf[0].CheckSignatureFrom(cas[0]) == nil && signing != r.first {
		r.leafByCA[string(sec.Data[certs.CertFile])] = true
	}
}

// stsguard serve --manage-certs, as deploy/self-signed runs it, on webhook
// configurations with an empty caBundle and every webhook failing closed:
// it creates the CA and serving certificate, injects the CA, and rotates
// the serving certificate and the CA while admission requests flow. No
// request fails, every fresh TLS connection verifies against the caBundle
// published at that moment, and a second replica serves what the first
// one wrote.
func TestManageCertsRotatesWithoutAFailedRequest(t *testing.T) {
	install(t, "self-signed")
	c, _ := admin(t)
	ctx := context.Background()
	key := client.ObjectKey{Namespace: "stsguard-system", Name: server.DefaultCertSecret}
	sec := &corev1.Secret{}
	if err := c.Get(ctx, key, sec); err == nil {
		require.NoError(t, c.Delete(ctx, sec))
	}
	// As rendered: no caBundle. Failing closed makes every failed call visible.
	setWebhooks(t, func(cc *admissionregistrationv1.WebhookClientConfig, fp **admissionregistrationv1.FailurePolicyType) {
		cc.CABundle = nil
		failurePolicy(admissionregistrationv1.Fail)(cc, fp)
	})

	host := cp.Webhook.LocalServingHost
	o := server.Options{
		RESTConfig: asServiceAccount(), ManageCerts: true, CertNamespace: key.Namespace,
		DNSNames: []string{host}, CAValidity: testCAValidity, CertValidity: testCertValidity,
	}
	serve(t, o)

	// A second replica: the certificate manager alone, sharing the Secret.
	sa, _, err := harness.NewClient(asServiceAccount())
	require.NoError(t, err)
	replica, err := certs.NewManager(certs.ManagerOptions{
		Client: sa, Namespace: key.Namespace, SecretName: key.Name, WebhookConfigurationName: "stsguard",
		DNSNames: o.DNSNames, CAValidity: testCAValidity, CertValidity: testCertValidity,
		Log: ctrl.Log.WithName("replica-2"),
	})
	require.NoError(t, err)
	rctx, stopReplica := context.WithCancel(ctx)
	replicaDone := make(chan error, 1)
	go func() { replicaDone <- replica.Start(rctx) }()
	defer func() { stopReplica(); require.NoError(t, <-replicaDone) }()

	ns := harness.Namespace(t, c)
	require.NoError(t, c.Create(ctx, headless(ns, "db")))
	// The first caBundle takes a moment to reach the apiserver's webhook
	// clients (a fresh install fails open meanwhile); rotations must not.
	eventually(t, "the apiserver calls stsguard with the injected CA", func() bool {
		return c.Create(ctx, mysql(ns, "db", "db"), client.DryRunAll) == nil
	})

	// Load: admission requests through the apiserver, and fresh TLS
	// handshakes checked against the caBundle in force at that moment.
	var (
		mu       sync.Mutex
		failures []string
		admitted int
		probed   int
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	lctx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; lctx.Err() == nil; i++ {
			// password-secret-ref mutates it; a dry run writes nothing.
			sts := mysql(ns, "db", "db")
			err := c.Create(lctx, sts, client.DryRunAll)
			switch {
			case lctx.Err() != nil:
				return
			case err != nil:
				fail("request %d: %v", i, err)
			case sts.Spec.Template.Spec.Containers[0].Env[0].ValueFrom == nil:
				fail("request %d: admitted without stsguard's mutation", i)
			default:
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		}
	})
	wg.Go(func() {
		addr := net.JoinHostPort(host, strconv.Itoa(cp.Webhook.LocalServingPort))
		for lctx.Err() == nil {
			mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err := c.Get(lctx, client.ObjectKey{Name: "stsguard"}, mwc); err != nil {
				continue
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(mwc.Webhooks[0].ClientConfig.CABundle) {
				continue // not injected yet
			}
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12})
			if err != nil {
				if lctx.Err() == nil {
					fail("TLS handshake against the published caBundle: %v", err)
				}
				continue
			}
			conn.Close()
			mu.Lock()
			probed++
			mu.Unlock()
		}
	})

	// Wait for: the CA rotated, and a serving certificate signed by the new
	// CA in use, after at least three serving certificates.
	seen := &rotations{leaves: map[string]bool{}, cas: map[string]bool{}, leafByCA: map[string]bool{}}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 4*testCAValidity, true, func(ctx context.Context) (bool, error) {
		s := &corev1.Secret{}
		if err := c.Get(ctx, key, s); err == nil {
			seen.observe(s)
		}
		return len(seen.cas) >= 2 && len(seen.leaves) >= 3 && len(seen.leafByCA) >= 1, nil
	})
	stopLoad()
	wg.Wait()
	require.NoError(t, err, "rotations seen: %d CAs, %d serving certificates, %d signed by a rotated CA", len(seen.cas), len(seen.leaves), len(seen.leafByCA))

	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, failures, "admission requests or handshakes failed during rotation")
	assert.Greater(t, admitted, 10, "requests admitted by stsguard during the rotations")
	assert.Greater(t, probed, 10, "TLS handshakes checked during the rotations")
	t.Logf("%d CAs, %d serving certificates, %d admission requests and %d handshakes, no failure", len(seen.cas), len(seen.leaves), admitted, probed)

	// Both replicas serve what the Secret holds.
	s := &corev1.Secret{}
	eventually(t, "the second replica serves the Secret's certificate", func() bool {
		if c.Get(ctx, key, s) != nil {
			return false
		}
		got, err := replica.GetCertificate(nil)
		if err != nil {
			return false
		}
		pem, err := cert.EncodeCertificates(got.Leaf)
		return err == nil && string(pem) == string(s.Data[certs.CertFile])
	})
	assert.Equal(t, corev1.SecretTypeTLS, s.Type)

	// The expiry metric follows the certificates in use (still rotating):
	// exactly the CA's and the serving certificate's NotAfter.
	var mismatch error
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		now := &corev1.Secret{}
		if c.Get(ctx, key, now) != nil {
			return false, nil
		}
		leaf, err1 := cert.ParseCertsPEM(now.Data[certs.CertFile])
		cas, err2 := cert.ParseCertsPEM(now.Data[certs.CAFile])
		if err1 != nil || err2 != nil {
			return false, nil
		}
		mismatch = testutil.GatherAndCompare(metrics.Registry,
			strings.NewReader(fmt.Sprintf(expiryMetric, cas[0].NotAfter.Unix(), leaf[0].NotAfter.Unix())),
			"stsguard_certificate_expiry_timestamp_seconds")
		return mismatch == nil, nil
	})
	require.NoError(t, err, "stsguard_certificate_expiry_timestamp_seconds follows the Secret: %v", mismatch)
	for _, secretValue := range []string{string(s.Data[certs.KeyFile]), string(s.Data[certs.CAKeyFile])} {
		assert.NotContains(t, logs.String(), strings.TrimSpace(secretValue)[40:80], "no key material in the logs")
	}
}

// With --manage-certs, a webhook left without the CA (a helm upgrade that
// adds one, kubectl apply or Argo CD writing a configuration as rendered)
// gets it back within seconds, not at the next reconcile (every minute
// with the default validities): stsguard watches its two webhook
// configurations by name, which the rendered RBAC allows.
func TestManageCertsPutsTheCABackWhenAWebhookLosesIt(t *testing.T) {
	install(t, "self-signed")
	c, _ := admin(t)
	ctx := context.Background()
	key := client.ObjectKey{Namespace: "stsguard-system", Name: server.DefaultCertSecret}
	if err := c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}); err != nil {
		require.True(t, apierrors.IsNotFound(err), "%v", err)
	}
	setWebhooks(t, func(cc *admissionregistrationv1.WebhookClientConfig, _ **admissionregistrationv1.FailurePolicyType) {
		cc.CABundle = nil // as rendered
	})
	serve(t, server.Options{RESTConfig: asServiceAccount(), ManageCerts: true, CertNamespace: key.Namespace,
		DNSNames: []string{cp.Webhook.LocalServingHost}})

	// bundles returns every webhook's caBundle by name.
	bundles := func() map[string]string {
		mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
		vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "stsguard"}, mwc))
		require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "stsguard"}, vwc))
		out := map[string]string{}
		for _, w := range mwc.Webhooks {
			out[w.Name] = string(w.ClientConfig.CABundle)
		}
		for _, w := range vwc.Webhooks {
			out[w.Name] = string(w.ClientConfig.CABundle)
		}
		return out
	}
	var want string
	eventually(t, "every webhook has the CA", func() bool {
		sec := &corev1.Secret{}
		if c.Get(ctx, key, sec) != nil {
			return false
		}
		want = string(sec.Data[certs.CAFile])
		for _, b := range bundles() {
			if b != want {
				return false
			}
		}
		return want != ""
	})

	for _, name := range []string{"statefulsets-update.mutate.stsguard.io", "services-update.validate.stsguard.io"} {
		dropCABundle(t, c, "stsguard", name)
		start := time.Now()
		harness.Eventually(t, name+" has the CA again", func() bool { return bundles()[name] == want }, 20*time.Second)
		t.Logf("%s had the CA back after %s", name, time.Since(start).Round(time.Millisecond))
	}
}

// dropCABundle empties the caBundle of the webhook named webhook in the
// webhook configurations named config, as applying a configuration as
// rendered does (or a helm upgrade that adds the webhook).
func dropCABundle(t *testing.T, c client.Client, config, webhook string) {
	t.Helper()
	ctx := context.Background()
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: config}, mwc))
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: config}, vwc))
	for i := range mwc.Webhooks {
		if mwc.Webhooks[i].Name == webhook {
			mwc.Webhooks[i].ClientConfig.CABundle = nil
			require.NoError(t, c.Update(ctx, mwc))
			return
		}
	}
	for i := range vwc.Webhooks {
		if vwc.Webhooks[i].Name == webhook {
			vwc.Webhooks[i].ClientConfig.CABundle = nil
			require.NoError(t, c.Update(ctx, vwc))
			return
		}
	}
	require.Failf(t, "no such webhook", "no webhook %s in %s", webhook, config)
}
