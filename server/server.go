package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/stsguard/stsguard/background"
	"github.com/stsguard/stsguard/certs"
	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/secretdata"
	"github.com/stsguard/stsguard/kinds"
	"github.com/stsguard/stsguard/lookup"
	"github.com/stsguard/stsguard/policy"
	"github.com/stsguard/stsguard/webhook"
)

// Options configure the server. The zero value of each field means its
// default, applied by Run.
type Options struct {
	// Port is the HTTPS port of the webhook server. Default 9443.
	Port int
	// Host is the address the webhook server listens on. Default "" (all).
	Host string
	// CertDir holds tls.crt and tls.key, hot-reloaded when they change. When
	// they are missing a self-signed CA and serving certificate for DNSNames
	// are generated there (with ca.crt). Default
	// /tmp/k8s-webhook-server/serving-certs.
	CertDir string
	// DNSNames are the names (or IP addresses) the generated serving
	// certificate is valid for. Default stsguard.stsguard-system.svc and
	// stsguard.stsguard-system.svc.cluster.local.
	DNSNames []string
	// ManageCerts makes stsguard keep its own CA and serving certificate in
	// the Secret CertNamespace/CertSecret, write the CA into the caBundle of
	// the webhook configurations named WebhookConfigurationName, and rotate
	// both (see certs.Manager). CertDir is not used then.
	ManageCerts bool
	// CertSecret is the Secret --manage-certs keeps. Default
	// stsguard-serving-cert.
	CertSecret string
	// CertNamespace is CertSecret's namespace. Default $POD_NAMESPACE, then
	// stsguard-system.
	CertNamespace string
	// WebhookConfigurationName names both webhook configurations whose
	// caBundle --manage-certs keeps. Default stsguard.
	WebhookConfigurationName string
	// CAValidity and CertValidity are the lifetimes of a CA and a serving
	// certificate that --manage-certs issues. Defaults certs.DefaultCAValidity
	// (3 years) and certs.DefaultValidity (90 days).
	CAValidity, CertValidity time.Duration
	// Kubeconfig is the kubeconfig file to use. Default: $KUBECONFIG, then
	// the in-cluster configuration, then ~/.kube/config.
	Kubeconfig string
	// RESTConfig, when set, is used instead of Kubeconfig (tests, embedding).
	RESTConfig *rest.Config
	// MetricsBindAddress serves Prometheus /metrics over HTTP. Default
	// ":8080"; "0" disables it.
	MetricsBindAddress string
	// HealthProbeBindAddress serves /healthz and /readyz. Default ":8081".
	HealthProbeBindAddress string
	// PprofBindAddress serves Go's net/http/pprof profiles (/debug/pprof/)
	// over plain HTTP, without authentication, for profiling the server
	// under load (make bench-apiserver -profile). Default "": off; "0" is
	// off too. Profiles show request contents in memory and can cost CPU:
	// bind it to a loopback address, never to one a pod network reaches.
	PprofBindAddress string
	// EnableHTTP2 allows HTTP/2 on the webhook server. Default false: HTTP/2
	// Rapid Reset (CVE-2023-44487) makes HTTP/1.1 the safer choice.
	EnableHTTP2 bool
	// ConfigFile is the policy file (config.stsguard.io/v1alpha1 Policy).
	// It is reloaded when it changes; an invalid file at start-up is an
	// error, an invalid change keeps the previous policy. Default: none.
	ConfigFile string
	// PolicyPollInterval is how often the policy file is re-read besides
	// file system events. Default policy.DefaultPollInterval.
	PolicyPollInterval time.Duration
	// Rules configures the rule engine when ConfigFile is empty. Default
	// engine.DefaultConfig().
	Rules *engine.Config
	// ShutdownDelay is how long the server keeps answering after the
	// context of Run is cancelled (SIGTERM), with /readyz failing and every
	// response closing its connection, before it stops (see drain). Nil
	// means DefaultShutdownDelay; zero stops at once.
	ShutdownDelay *time.Duration
	// BackgroundAudit, when set, runs the background audit of the objects
	// that exist (package background): every StatefulSet, Service and
	// Secret judged, on the replica holding its Lease, into policy reports
	// and the stsguard_violations gauge. Its LeaseNamespace defaults to
	// $POD_NAMESPACE, then the kubeconfig context's namespace, then
	// "default". Default nil: none (stsguard serve sets it unless
	// --background-audit=false).
	BackgroundAudit *background.Options
}

// DefaultCertDir is controller-runtime's default certificate directory.
const DefaultCertDir = "/tmp/k8s-webhook-server/serving-certs"

// DefaultCertSecret is the Secret --manage-certs keeps, and the one
// deploy/cert-manager has cert-manager write.
const DefaultCertSecret = "stsguard-serving-cert"

// DefaultDNSNames returns the names of the Service in deploy/base, in a new
// slice each call.
func DefaultDNSNames() []string {
	return []string{"stsguard.stsguard-system.svc", "stsguard.stsguard-system.svc.cluster.local"}
}

func (o *Options) setDefaults() {
	if o.Port == 0 {
		o.Port = 9443
	}
	if o.CertDir == "" {
		o.CertDir = DefaultCertDir
	}
	if len(o.DNSNames) == 0 {
		o.DNSNames = DefaultDNSNames()
	}
	if o.CertSecret == "" {
		o.CertSecret = DefaultCertSecret
	}
	if o.CertNamespace == "" {
		o.CertNamespace = cmp.Or(os.Getenv("POD_NAMESPACE"), "stsguard-system")
	}
	if o.WebhookConfigurationName == "" {
		o.WebhookConfigurationName = "stsguard"
	}
	if o.MetricsBindAddress == "" {
		o.MetricsBindAddress = ":8080"
	}
	if o.HealthProbeBindAddress == "" {
		o.HealthProbeBindAddress = ":8081"
	}
	if o.Rules == nil {
		cfg := engine.DefaultConfig()
		o.Rules = &cfg
	}
	if o.ShutdownDelay == nil {
		o.ShutdownDelay = ptr.To(DefaultShutdownDelay)
	}
}

// restConfig returns the client configuration Options ask for.
func (o *Options) restConfig() (*rest.Config, error) {
	switch {
	case o.RESTConfig != nil:
		return o.RESTConfig, nil
	case o.Kubeconfig != "":
		cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading --kubeconfig %s: %w", o.Kubeconfig, err)
		}
		return cfg, nil
	default:
		cfg, err := config.GetConfig()
		if err != nil {
			return nil, fmt.Errorf("no cluster configuration (set --kubeconfig or KUBECONFIG, or run in a pod): %w", err)
		}
		return cfg, nil
	}
}

// Run starts the server and blocks until it has stopped, or fails. When ctx
// is cancelled (SIGTERM) the server drains for o.ShutdownDelay (/readyz
// fails, responses close their connections), then stops, letting requests
// in flight finish. It returns an error when the configuration is unusable
// (no cluster configuration, unreadable or half-present certificates, a port
// in use).
func Run(ctx context.Context, o Options) error {
	o.setDefaults()
	log := ctrl.Log.WithName("serve")

	restCfg, err := o.restConfig()
	if err != nil {
		return err
	}
	holder, err := policy.NewHolder(o.ConfigFile, *o.Rules, o.PolicyPollInterval, metrics.Registry, ctrl.Log.WithName("policy"))
	if err != nil {
		return err
	}
	if o.ConfigFile != "" {
		log.Info("policy loaded", "file", o.ConfigFile)
	}
	webhookMetrics, err := webhook.NewMetrics(metrics.Registry)
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	// One RESTMapper for the manager and every client: the informers'
	// registration below maps the kinds the rules read before the webhook
	// is ready, so a live read or a Secret write never waits on API
	// discovery (a client with a mapper of its own discovers on its first
	// call, under a lock and with no deadline of the request's).
	httpClient, err := rest.HTTPClientFor(restCfg)
	if err != nil {
		return fmt.Errorf("creating the HTTP client: %w", err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(restCfg, httpClient)
	if err != nil {
		return fmt.Errorf("creating the REST mapper: %w", err)
	}
	live, err := client.New(restCfg, client.Options{Scheme: scheme, Mapper: mapper})
	if err != nil {
		return fmt.Errorf("creating API client: %w", err)
	}
	liveReads, err := newLiveReads(restCfg, scheme, mapper)
	if err != nil {
		return err
	}
	secretWriter, err := newSecretWriter(restCfg, scheme, mapper)
	if err != nil {
		return err
	}
	certMetrics, err := certs.NewMetrics(metrics.Registry)
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	serving, err := o.servingCertificate(restCfg, live, certMetrics, log)
	if err != nil {
		return err
	}
	// baseTLS applies to the metrics and the webhook server alike.
	baseTLS := func(c *tls.Config) {
		c.MinVersion = tls.VersionTLS12
		if !o.EnableHTTP2 {
			c.NextProtos = []string{"http/1.1"}
		}
	}
	webhookTLS := func(c *tls.Config) {
		baseTLS(c)
		c.GetCertificate = serving.GetCertificate
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                 scheme,
		MapperProvider:         func(*rest.Config, *http.Client) (meta.RESTMapper, error) { return mapper, nil },
		Metrics:                metricsserver.Options{BindAddress: o.MetricsBindAddress, TLSOpts: []func(*tls.Config){baseTLS}},
		HealthProbeBindAddress: o.HealthProbeBindAddress,
		PprofBindAddress:       o.PprofBindAddress,
		WebhookServer:          crwebhook.NewServer(crwebhook.Options{Host: o.Host, Port: o.Port, TLSOpts: []func(*tls.Config){webhookTLS}}),
		Cache:                  CacheOptions(),
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	// Register the informers of every kind the rules read (kinds.All())
	// before the cache starts.
	for _, k := range kinds.All() {
		obj := k.New()
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return fmt.Errorf("registering informer for %T: %w", obj, err)
		}
	}
	// The Secret rules read the StatefulSets referencing a Secret from an
	// index, not by walking every StatefulSet of the namespace.
	if err := lookup.IndexSecrets(ctx, mgr.GetFieldIndexer()); err != nil {
		return fmt.Errorf("registering the index of StatefulSets by Secret: %w", err)
	}
	var synced atomic.Bool
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		if mgr.GetCache().WaitForCacheSync(ctx) {
			synced.Store(true)
			log.Info("informer cache synced; ready")
		}
		return nil
	})); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("cache-sync", func(*http.Request) error {
		if !synced.Load() {
			return errors.New("informer cache not synced yet")
		}
		return nil
	}); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("certificate", serving.Ready); err != nil {
		return err
	}
	var drain drain
	if err := mgr.AddReadyzCheck("shutdown", drain.Checker); err != nil {
		return err
	}
	if err := mgr.Add(serving); err != nil {
		return err
	}

	if err := mgr.Add(holder); err != nil {
		return err
	}
	if err := o.addBackgroundAudit(mgr, restCfg, holder.Engine); err != nil {
		return err
	}

	handlers := &webhook.Handlers{
		Engine: holder.Engine,
		Lookup: func() engine.Lookup {
			return lookup.Reader{Cache: mgr.GetCache(), Live: liveReads.ForRequest()}
		},
		// Writing a Secret drops its negative cache entry, so that the
		// validating webhook reads the Secret the mutating one just wrote.
		Secrets: liveReads.ForgetOnWrite(secretWriter),
		Metrics: webhookMetrics,
	}
	// srv.Register wraps each webhook in controller-runtime's metrics
	// (controller_runtime_webhook_*); drain.Handler closes each connection
	// after its response once the drain has started.
	srv := mgr.GetWebhookServer()
	for path, wh := range handlers.Webhooks() {
		srv.Register(path, drain.Handler(wh))
	}

	log.Info("starting", "port", o.Port, "manageCerts", o.ManageCerts, "metrics", o.MetricsBindAddress, "probes", o.HealthProbeBindAddress,
		"http2", o.EnableHTTP2, "pprof", o.PprofBindAddress, "shutdownDelay", *o.ShutdownDelay)
	mgrCtx, release := drain.context(ctx, *o.ShutdownDelay, log)
	defer release()
	return mgr.Start(mgrCtx)
}

// Client-side limits of the Secret writes of password-secret-ref (writes
// per second and burst). client-go's default (QPS 5, burst 10), shared with
// the certificate manager, would queue a burst of StatefulSets with literal
// passwords (a Helm install of many databases) until the 2 s write deadline
// admitted them with the literal left in place. The apiserver's own
// priority and fairness still protects it.
const (
	secretWriteQPS   = 50
	secretWriteBurst = 100
)

// newSecretWriter returns the client that writes, and re-reads after a
// conflict, the Secrets password-secret-ref moves literals into, with a rate
// limit of its own (secretWriteQPS, secretWriteBurst).
func newSecretWriter(restCfg *rest.Config, scheme *runtime.Scheme, mapper meta.RESTMapper) (client.Client, error) {
	cfg := rest.CopyConfig(restCfg)
	cfg.RateLimiter = nil
	cfg.QPS, cfg.Burst = secretWriteQPS, secretWriteBurst
	c, err := client.New(cfg, client.Options{Scheme: scheme, Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("creating the API client for Secret writes: %w", err)
	}
	return c, nil
}

// newLiveReads returns the live reads of the rules' Lookup: Services and
// Secrets the informer cache does not have yet, read through a client of
// their own. That client has no client-side rate limit: lookup.Live's token
// bucket (lookup.DefaultQPS 20 reads/s, lookup.DefaultBurst 50) is the one
// limit, and a read that finds it empty is skipped rather than queued, so
// a request never waits behind other requests' reads as it did behind
// client-go's default limiter (QPS 5, burst 10) shared with every other
// call. Objects read live are trimmed as cached ones are (trimSecret trims a
// Service as trimObject does).
func newLiveReads(restCfg *rest.Config, scheme *runtime.Scheme, mapper meta.RESTMapper) (*lookup.Live, error) {
	cfg := rest.CopyConfig(restCfg)
	cfg.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	c, err := client.New(cfg, client.Options{Scheme: scheme, Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("creating the API client for live lookups: %w", err)
	}
	return lookup.NewLive(c, lookup.LiveOptions{Transform: trimSecret, Registerer: metrics.Registry})
}

// servingSource is where the webhook server's certificate comes from: a
// runnable that keeps it current, serves it and tells when it is loaded.
type servingSource interface {
	manager.Runnable
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	Ready(*http.Request) error
}

// servingCertificate returns the Manager of --manage-certs (reading and
// writing through c, watching the webhook configurations through a
// clientset of cfg), or a certwatcher on CertDir (generating a self-signed
// pair there when it holds none). Both record the serving certificate's
// expiry in m.
func (o *Options) servingCertificate(cfg *rest.Config, c client.Client, m *certs.Metrics, log logr.Logger) (servingSource, error) {
	if o.ManageCerts {
		watch, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("client for watching the webhook configurations: %w", err)
		}
		cm, err := certs.NewManager(certs.ManagerOptions{
			Client: c, Watch: watch, Namespace: o.CertNamespace, SecretName: o.CertSecret,
			WebhookConfigurationName: o.WebhookConfigurationName, DNSNames: o.DNSNames,
			CAValidity: o.CAValidity, CertValidity: o.CertValidity,
			Log: ctrl.Log.WithName("certs"), Metrics: m,
		})
		if err != nil {
			return nil, err
		}
		log.Info("managing the CA and serving certificate", "secret", o.CertNamespace+"/"+o.CertSecret,
			"webhookConfigurations", o.WebhookConfigurationName, "dnsNames", o.DNSNames)
		return cm, nil
	}
	generated, err := certs.EnsureDir(o.CertDir, o.DNSNames)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	if generated {
		log.Info("generated a self-signed CA and serving certificate; put ca.crt into the caBundle of the webhook configurations",
			"dir", o.CertDir, "dnsNames", o.DNSNames)
	}
	w, err := certwatcher.New(filepath.Join(o.CertDir, certs.CertFile), filepath.Join(o.CertDir, certs.KeyFile))
	if err != nil {
		return nil, fmt.Errorf("loading the serving certificate from %s: %w", o.CertDir, err)
	}
	w.RegisterCallback(func(c tls.Certificate) { m.Loaded(c.Leaf, nil) })
	return watched{w}, nil
}

// watched is a certwatcher, ready once it has loaded a certificate (New
// loads one, or fails).
type watched struct{ *certwatcher.CertWatcher }

func (watched) Ready(*http.Request) error { return nil }

// CacheOptions are the options of the informer cache the rules' Lookup
// reads: every object without its managed fields and kubectl's last-applied
// annotation (trimObject), a Secret without its values (trimSecret: key
// names and digests, see secretdata.Trim), not copied on read, and a read
// of a kind without an informer an error rather than a new informer.
func CacheOptions() cache.Options {
	return cache.Options{
		// A rule's lookup never starts an informer or calls the API.
		ReaderFailOnMissingInformer: true,
		DefaultTransform:            trimObject,
		// Rules only read cached objects; copying them per request is waste.
		DefaultUnsafeDisableDeepCopy: ptr.To(true),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Transform: trimSecret},
		},
	}
}

// lastAppliedAnnotation is where kubectl apply keeps a copy of the applied
// manifest: for a Secret, its values in plain text.
const lastAppliedAnnotation = corev1.LastAppliedConfigAnnotation

// trimObject keeps cached objects small and free of copies of secret
// values: no managed fields and no kubectl last-applied annotation, which
// no rule reads.
func trimObject(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
		if a := o.GetAnnotations(); a != nil {
			if _, has := a[lastAppliedAnnotation]; has {
				delete(a, lastAppliedAnnotation)
				o.SetAnnotations(a)
			}
		}
	}
	return obj, nil
}

// trimSecret is trimObject and keeps of a Secret's data only what the rules
// read: the key names and each value's keyed digests (secretdata.Trim), so
// that neither the informer cache nor a live read holds a Secret value. A
// Helm release record, which no StatefulSet references and which can be
// megabytes, keeps no data at all. Other objects are trimmed as trimObject
// trims them.
func trimSecret(obj any) (any, error) {
	if s, ok := obj.(*corev1.Secret); ok {
		if s.Type == "helm.sh/release.v1" {
			s.Data = nil
		}
		secretdata.Trim(s)
	}
	return trimObject(obj)
}
