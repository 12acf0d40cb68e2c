package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SigningCASinceAnnotation records on the managed Secret when the CA that
// signs new serving certificates (the first certificate of ca.crt) was put
// there, in RFC 3339. A serving certificate is signed by a new CA only once
// that CA has been in every webhook's caBundle for the propagation delay.
const SigningCASinceAnnotation = "stsguard.io/signing-ca-since"

// ManagerOptions configure a Manager. Client, Namespace, SecretName,
// WebhookConfigurationName and DNSNames are required.
type ManagerOptions struct {
	// Client reads and writes the Secret and the webhook configurations,
	// directly against the API (no cache).
	Client client.Client
	// Watch, when set, watches the two webhook configurations: Start then
	// reconciles as soon as one changes, so that a webhook added by an
	// upgrade, or a caBundle emptied by kubectl apply, Helm or Argo CD,
	// gets the CA within a moment instead of at the next Interval. It
	// needs RBAC list and watch of both kinds (resourceNames
	// WebhookConfigurationName is enough); without them Start logs so once
	// and goes on with Interval alone. Nil: Interval alone.
	Watch kubernetes.Interface
	// Namespace and SecretName name the Secret holding tls.crt, tls.key,
	// ca.crt (every CA clients must trust, the signing CA first) and ca.key.
	Namespace, SecretName string
	// WebhookConfigurationName is the name of both the
	// MutatingWebhookConfiguration and the ValidatingWebhookConfiguration
	// whose webhooks get ca.crt as their caBundle.
	WebhookConfigurationName string
	// DNSNames are the serving certificate's names (IP addresses become IP
	// SANs).
	DNSNames []string
	// CAValidity and CertValidity are the lifetimes of a new CA and serving
	// certificate. Defaults DefaultCAValidity and DefaultValidity. Each is
	// renewed when two thirds of its life have passed.
	CAValidity, CertValidity time.Duration
	// Interval is how often the Secret and the webhook configurations are
	// checked. Default: a twentieth of CertValidity, at most one minute.
	Interval time.Duration
	// Log receives what the Manager does; never key material.
	Log logr.Logger
	// Metrics records certificate expiry and reconcile errors; nil records
	// nothing.
	Metrics *Metrics
}

// Manager keeps a self-managed CA and serving certificate in a Secret,
// injects the CA into the caBundle of stsguard's webhook configurations and
// serves the current certificate through GetCertificate. Every replica runs
// one; they agree through the Secret's resourceVersion: each write is an
// update of the version read, and a replica that loses the race (409
// Conflict) reads the winner's Secret and uses it.
//
// Rotation order, so that no apiserver ever sees a certificate it cannot
// verify:
//  1. A CA past two thirds of its life is replaced as the signing CA, but
//     stays in ca.crt (and so in every caBundle) until it expires.
//  2. ca.crt is written into every webhook's caBundle.
//  3. A serving certificate is signed by the new CA only after step 2 is
//     seen in both webhook configurations and the propagation delay (a
//     tenth of CertValidity, at most one minute) has passed; until then
//     the old one, signed by a CA still trusted, is served.
//  4. A serving certificate past two thirds of its life is replaced; it
//     never outlives the CA that signed it.
//
// Manager implements controller-runtime's manager.Runnable (it runs on
// every replica, not only a leader).
type Manager struct {
	o       ManagerOptions
	clock   clock.PassiveClock
	current atomic.Pointer[tls.Certificate]
	mu      sync.Mutex // serialises Reconcile
	loaded  []byte     // tls.crt of current
	// wroteBundle is when inject last wrote a caBundle (under mu): a new
	// signing CA is used only a propagation delay after that too, however
	// soon the next reconcile comes (with Watch, ~0.1 s after the write).
	wroteBundle time.Time
}

// NewManager checks o and returns a Manager. It returns an error when a
// required option is missing or a validity is not positive.
func NewManager(o ManagerOptions) (*Manager, error) {
	switch {
	case o.Client == nil:
		return nil, errors.New("certificate manager: no API client")
	case o.Namespace == "" || o.SecretName == "":
		return nil, errors.New("certificate manager: the Secret's namespace and name are required (--cert-secret, POD_NAMESPACE)")
	case o.WebhookConfigurationName == "":
		return nil, errors.New("certificate manager: the webhook configuration name is required (--webhook-configuration-name)")
	case len(o.DNSNames) == 0:
		return nil, errors.New("certificate manager: no DNS names for the serving certificate; pass at least one --dns-name")
	}
	if o.CAValidity == 0 {
		o.CAValidity = DefaultCAValidity
	}
	if o.CertValidity == 0 {
		o.CertValidity = DefaultValidity
	}
	if o.CAValidity <= 0 || o.CertValidity <= 0 {
		return nil, fmt.Errorf("certificate manager: validities must be positive (CA %s, serving %s)", o.CAValidity, o.CertValidity)
	}
	if o.CertValidity > o.CAValidity {
		return nil, fmt.Errorf("certificate manager: the serving certificate validity (%s) must not exceed the CA validity (%s)", o.CertValidity, o.CAValidity)
	}
	if o.Interval <= 0 {
		o.Interval = max(time.Second, min(time.Minute, o.CertValidity/20))
	}
	return &Manager{o: o, clock: clock.RealClock{}}, nil
}

// propagation is how long a new CA must have been in the caBundle before
// it signs the serving certificate: the time for every apiserver's webhook
// configuration informer to see the new caBundle.
func (m *Manager) propagation() time.Duration { return min(time.Minute, m.o.CertValidity/10) }

// NeedLeaderElection is false: every replica keeps its own certificate
// loaded and may perform a rotation.
func (m *Manager) NeedLeaderElection() bool { return false }

// Start reconciles at once, then every Interval and, with Watch, whenever
// one of the webhook configurations changes (at most one such reconcile a
// second, a burst of 5: a writer that keeps resetting the caBundle does not
// start a write loop at API speed), until ctx is done. Errors are logged
// and retried at the next tick; Start returns nil when ctx ends.
func (m *Manager) Start(ctx context.Context) error {
	changed := make(chan struct{}, 1)
	if m.o.Watch != nil {
		wctx, cancel := context.WithCancel(ctx)
		shutdown := m.watchConfigurations(wctx, cancel, func() {
			select {
			case changed <- struct{}{}:
			default: // a reconcile is already due
			}
		})
		defer func() { cancel(); shutdown() }()
	}
	events := flowcontrol.NewTokenBucketRateLimiter(1, 5)
	tick := time.NewTicker(m.o.Interval)
	defer tick.Stop()
	for {
		if err := m.Reconcile(ctx); err != nil && ctx.Err() == nil {
			m.o.Metrics.Failed()
			m.o.Log.Error(err, "certificate reconcile failed; retrying", "secret", m.o.Namespace+"/"+m.o.SecretName, "in", m.o.Interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-changed:
			if events.Wait(ctx) != nil {
				return nil
			}
		}
	}
}

// watchConfigurations starts client-go informers on the
// MutatingWebhookConfiguration and the ValidatingWebhookConfiguration
// named WebhookConfigurationName (a metadata.name field selector, which
// RBAC authorizes by resourceNames) and calls changed on every add or
// update of either, until ctx is done; the function it returns waits for
// the informers to stop once ctx is done. Its own caBundle writes come back
// as one update each, after which a reconcile finds nothing to write. When
// RBAC forbids the list or watch (a stsguard of this version with the RBAC
// of an older one), it logs so once and calls stop: the caBundle is then
// checked every Interval only.
func (m *Manager) watchConfigurations(ctx context.Context, stop context.CancelFunc, changed func()) (shutdown func()) {
	factory := informers.NewSharedInformerFactoryWithOptions(m.o.Watch, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", m.o.WebhookConfigurationName).String()
		}))
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { changed() },
		UpdateFunc: func(any, any) { changed() },
	}
	var forbidden sync.Once
	onError := func(ctx context.Context, r *cache.Reflector, err error) {
		if apierrors.IsForbidden(err) {
			forbidden.Do(func() {
				m.o.Log.Info("not permitted to watch the webhook configurations (RBAC: list and watch of "+
					"mutatingwebhookconfigurations and validatingwebhookconfigurations, resourceNames "+m.o.WebhookConfigurationName+
					"); their caBundle is checked every interval only", "interval", m.o.Interval, "error", err.Error())
				stop()
			})
			return
		}
		cache.DefaultWatchErrorHandler(ctx, r, err)
	}
	api := factory.Admissionregistration().V1()
	for _, inf := range []cache.SharedIndexInformer{api.MutatingWebhookConfigurations().Informer(), api.ValidatingWebhookConfigurations().Informer()} {
		if err := inf.SetWatchErrorHandlerWithContext(onError); err != nil {
			m.o.Log.Error(err, "watching the webhook configurations; their caBundle is checked every interval only", "interval", m.o.Interval)
			return func() {}
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			m.o.Log.Error(err, "watching the webhook configurations; their caBundle is checked every interval only", "interval", m.o.Interval)
			return func() {}
		}
	}
	factory.Start(ctx.Done())
	return factory.Shutdown
}

// GetCertificate returns the serving certificate in force, for
// tls.Config.GetCertificate. It returns an error until one is loaded.
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := m.current.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("no serving certificate loaded yet")
}

// Ready is a readiness check: ready once a serving certificate is loaded.
func (m *Manager) Ready(*http.Request) error {
	if m.current.Load() == nil {
		return fmt.Errorf("serving certificate not loaded yet from Secret %s/%s", m.o.Namespace, m.o.SecretName)
	}
	return nil
}

// state is the parsed content of the Secret.
type state struct {
	cas     []*x509.Certificate // ca.crt: the signing CA first, then older CAs still trusted
	caKey   crypto.Signer       // ca.key: the key of cas[0]
	leaf    *x509.Certificate   // tls.crt
	crt     []byte
	key     []byte
	caSince time.Time // SigningCASinceAnnotation
}

// Reconcile brings the Secret, the caBundles and the served certificate up
// to date once, following the order in Manager's comment. A conflict with
// another replica's write (a Conflict on update, AlreadyExists on create)
// is resolved by reading again, with client-go's retry.DefaultRetry backoff
// (5 attempts, 10 ms apart). It returns an error when the API refuses a
// read or write, or when the webhook configurations cannot be updated.
func (m *Manager) Reconcile(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	anotherReplicaWroteFirst := func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }
	return retry.OnError(retry.DefaultRetry, anotherReplicaWroteFirst, func() error { return m.reconcileOnce(ctx) })
}

func (m *Manager) reconcileOnce(ctx context.Context) error {
	log := m.o.Log
	now := m.clock.Now()
	sec := &corev1.Secret{}
	key := types.NamespacedName{Namespace: m.o.Namespace, Name: m.o.SecretName}
	err := m.o.Client.Get(ctx, key, sec)
	switch {
	case apierrors.IsNotFound(err):
		st, err := m.fresh(now)
		if err != nil {
			return err
		}
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
			Labels: map[string]string{"app.kubernetes.io/name": "stsguard", "app.kubernetes.io/managed-by": "stsguard"}}}
		st.write(sec)
		if err := m.o.Client.Create(ctx, sec); err != nil {
			return fmt.Errorf("creating Secret %s: %w", key, err)
		}
		log.Info("created CA and serving certificate", "secret", key.String(), "caNotAfter", st.cas[0].NotAfter, "notAfter", st.leaf.NotAfter)
		return m.finish(ctx, st)
	case err != nil:
		return fmt.Errorf("reading Secret %s: %w", key, err)
	}

	st, perr := parse(sec)
	if perr != nil {
		log.Error(perr, "Secret holds no usable CA and serving certificate; replacing them", "secret", key.String())
		if st, err = m.fresh(now); err != nil {
			return err
		}
		return m.update(ctx, sec, st, "replaced unusable certificates")
	}

	// 1. CA rotation, and expired CAs out of the bundle.
	changed := ""
	if kept := slices.DeleteFunc(slices.Clone(st.cas[1:]), func(c *x509.Certificate) bool { return !now.Before(c.NotAfter) }); len(kept) != len(st.cas)-1 {
		st.cas = append(st.cas[:1], kept...)
		changed = "dropped expired CAs from ca.crt"
	}
	if !now.Before(renewAt(st.cas[0])) {
		ca, err := newCA(now, m.o.CAValidity)
		if err != nil {
			return err
		}
		st.cas = append([]*x509.Certificate{ca.Cert}, st.cas...)
		st.caKey, st.caSince = ca.Key, now
		changed = "rotated the CA; the previous CA stays trusted until it expires"
	}
	if changed != "" {
		return m.update(ctx, sec, st, changed)
	}

	// 2. Every webhook trusts ca.crt.
	injected, err := m.inject(ctx, st.bundle())
	if err != nil {
		return err
	}

	// 3, 4. The serving certificate.
	reason := ""
	trusted := st.leaf != nil && now.Before(st.leaf.NotAfter) && st.issuer() != nil
	switch {
	case !trusted:
		reason = "serving certificate missing, expired or signed by no trusted CA"
	case !covers(st.leaf, m.o.DNSNames):
		reason = "serving certificate does not cover every --dns-name"
	case !now.Before(renewAt(st.leaf)):
		reason = "serving certificate past two thirds of its life"
	case st.issuer() != st.cas[0]:
		reason = "serving certificate not signed by the current CA"
	}
	if reason == "" {
		return m.finish(ctx, st)
	}
	if trusted && st.issuer() != st.cas[0] && !m.published(st, injected, now) {
		// The served certificate still works: wait until every apiserver
		// trusts the new signing CA before serving a certificate it signed.
		log.V(1).Info("serving certificate renewal waits for the new CA to reach every caBundle", "reason", reason)
		return m.finish(ctx, st)
	}
	if st.crt, st.key, err = (&CA{Cert: st.cas[0], Key: st.caKey}).sign(now, m.o.DNSNames, m.o.CertValidity); err != nil {
		return err
	}
	if st.leaf, err = leafOf(st.crt); err != nil {
		return err
	}
	return m.update(ctx, sec, st, "issued a serving certificate: "+reason)
}

// published reports whether the signing CA has been in every caBundle for
// the propagation delay: since it became the signing CA, and since the last
// caBundle write (one that restored a caBundle someone reset).
func (m *Manager) published(st *state, injected bool, now time.Time) bool {
	since := st.caSince
	if m.wroteBundle.After(since) {
		since = m.wroteBundle
	}
	return injected && !now.Before(since.Add(m.propagation()))
}

// fresh returns a new CA and a serving certificate signed by it.
func (m *Manager) fresh(now time.Time) (*state, error) {
	ca, err := newCA(now, m.o.CAValidity)
	if err != nil {
		return nil, err
	}
	st := &state{cas: []*x509.Certificate{ca.Cert}, caKey: ca.Key, caSince: now}
	if st.crt, st.key, err = ca.sign(now, m.o.DNSNames, m.o.CertValidity); err != nil {
		return nil, err
	}
	if st.leaf, err = leafOf(st.crt); err != nil {
		return nil, err
	}
	return st, nil
}

// update writes st into sec, conditional on the resourceVersion read, and
// then loads and injects it. A Conflict is returned for Reconcile to read
// again.
func (m *Manager) update(ctx context.Context, sec *corev1.Secret, st *state, what string) error {
	st.write(sec)
	if err := m.o.Client.Update(ctx, sec); err != nil {
		if apierrors.IsConflict(err) {
			m.o.Log.V(1).Info("another replica updated the certificate Secret first; reading it", "secret", m.o.Namespace+"/"+m.o.SecretName)
		}
		return fmt.Errorf("updating Secret %s/%s: %w", sec.Namespace, sec.Name, err)
	}
	m.o.Log.Info(what, "secret", m.o.Namespace+"/"+m.o.SecretName, "caNotAfter", st.cas[0].NotAfter, "notAfter", st.leaf.NotAfter, "trustedCAs", len(st.cas))
	return m.finish(ctx, st)
}

// finish injects the bundle and loads the serving certificate.
func (m *Manager) finish(ctx context.Context, st *state) error {
	if _, err := m.inject(ctx, st.bundle()); err != nil {
		return err
	}
	return m.load(st)
}

// load serves st's certificate from now on, when it differs from the one
// served.
func (m *Manager) load(st *state) error {
	if bytes.Equal(m.loaded, st.crt) {
		return nil
	}
	pair, err := tls.X509KeyPair(st.crt, st.key)
	if err != nil {
		return fmt.Errorf("loading the serving certificate: %w", err)
	}
	m.current.Store(&pair)
	m.loaded = st.crt
	m.o.Log.Info("serving certificate loaded", "notAfter", st.leaf.NotAfter, "dnsNames", st.leaf.DNSNames)
	m.o.Metrics.Loaded(st.leaf, st.cas[0])
	return nil
}

// inject sets every webhook's caBundle in both webhook configurations to
// bundle. It reports whether both exist and carry it. A configuration that
// does not exist yet is not an error (it may be applied after the
// Deployment): inject reports false and the next tick tries again.
func (m *Manager) inject(ctx context.Context, bundle []byte) (bool, error) {
	name := types.NamespacedName{Name: m.o.WebhookConfigurationName}
	all := true
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	for _, obj := range []client.Object{mwc, vwc} {
		if err := m.o.Client.Get(ctx, name, obj); err != nil {
			if apierrors.IsNotFound(err) {
				m.o.Log.Info("webhook configuration not found; its caBundle will be set once it exists", "kind", fmt.Sprintf("%T", obj), "name", name.Name)
				all = false
				continue
			}
			return false, fmt.Errorf("reading webhook configuration %s: %w", name.Name, err)
		}
		var bundles []*[]byte
		switch o := obj.(type) {
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			for i := range o.Webhooks {
				bundles = append(bundles, &o.Webhooks[i].ClientConfig.CABundle)
			}
		case *admissionregistrationv1.ValidatingWebhookConfiguration:
			for i := range o.Webhooks {
				bundles = append(bundles, &o.Webhooks[i].ClientConfig.CABundle)
			}
		}
		changed := false
		for _, b := range bundles {
			if !bytes.Equal(*b, bundle) {
				*b, changed = bundle, true
			}
		}
		if !changed {
			continue
		}
		if err := m.o.Client.Update(ctx, obj); err != nil {
			return false, fmt.Errorf("writing caBundle into %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, name.Name, err)
		}
		m.o.Log.Info("caBundle written", "configuration", fmt.Sprintf("%T", obj), "name", name.Name, "webhooks", len(bundles))
		m.wroteBundle = m.clock.Now()
		all = false // written just now: not yet propagated
	}
	return all, nil
}

// parse reads a Secret written by write. It returns an error naming the
// first key that is missing or unusable.
func parse(sec *corev1.Secret) (*state, error) {
	st := &state{crt: sec.Data[CertFile], key: sec.Data[KeyFile]}
	cas, err := cert.ParseCertsPEM(sec.Data[CAFile])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CAFile, err)
	}
	st.cas = cas
	k, err := keyutil.ParsePrivateKeyPEM(sec.Data[CAKeyFile])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CAKeyFile, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: %T is not a signing key", CAKeyFile, k)
	}
	type publicKey interface{ Equal(crypto.PublicKey) bool }
	if pk, ok := signer.Public().(publicKey); !ok || !pk.Equal(cas[0].PublicKey) {
		return nil, fmt.Errorf("%s is not the key of the first certificate in %s", CAKeyFile, CAFile)
	}
	st.caKey = signer
	if t, err := time.Parse(time.RFC3339Nano, sec.Annotations[SigningCASinceAnnotation]); err == nil {
		st.caSince = t
	}
	if _, err := tls.X509KeyPair(st.crt, st.key); err == nil {
		st.leaf, _ = leafOf(st.crt)
	}
	return st, nil
}

// write puts st into sec's data and annotations.
func (st *state) write(sec *corev1.Secret) {
	sec.Type = corev1.SecretTypeTLS
	keyPEM, _ := keyutil.MarshalPrivateKeyToPEM(st.caKey) // a key we generated or parsed marshals
	sec.Data = map[string][]byte{CertFile: st.crt, KeyFile: st.key, CAFile: st.bundle(), CAKeyFile: keyPEM}
	if sec.Annotations == nil {
		sec.Annotations = map[string]string{}
	}
	sec.Annotations[SigningCASinceAnnotation] = st.caSince.UTC().Format(time.RFC3339Nano)
}

// bundle is ca.crt: every trusted CA as PEM, the signing CA first.
func (st *state) bundle() []byte {
	b, _ := cert.EncodeCertificates(st.cas...)
	return b
}

// issuer returns the trusted CA that signed the serving certificate, or nil.
func (st *state) issuer() *x509.Certificate {
	if st.leaf == nil {
		return nil
	}
	for _, ca := range st.cas {
		if st.leaf.CheckSignatureFrom(ca) == nil {
			return ca
		}
	}
	return nil
}

func leafOf(crt []byte) (*x509.Certificate, error) {
	cs, err := cert.ParseCertsPEM(crt)
	if err != nil {
		return nil, fmt.Errorf("parsing the serving certificate: %w", err)
	}
	return cs[0], nil
}

// renewAt is when two thirds of c's life have passed.
func renewAt(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
}

// covers reports whether c is valid for every name.
func covers(c *x509.Certificate, names []string) bool {
	for _, n := range names {
		if net.ParseIP(n) != nil {
			if c.VerifyHostname(n) != nil {
				return false
			}
		} else if !slices.Contains(c.DNSNames, n) {
			return false
		}
	}
	return true
}
