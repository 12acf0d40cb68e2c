package server

import (
	"cmp"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/stsguard/stsguard/background"
	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/reports"
)

// Client-side limits of the background audit's report writes (requests
// per second and burst): a report write is a GET and at most one write,
// and writes are coalesced per namespace, so this bounds the reports
// written to about 5 a second.
const (
	reportQPS   = 10
	reportBurst = 20
)

// addBackgroundAudit adds the background audit (package background) to
// mgr, judging with the engine eng returns, when o asks for it.
func (o *Options) addBackgroundAudit(mgr manager.Manager, restCfg *rest.Config, eng func() *engine.Engine) error {
	if o.BackgroundAudit == nil {
		return nil
	}
	bo := *o.BackgroundAudit
	bo.LeaseNamespace = o.leaseNamespace()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := reports.AddToScheme(scheme); err != nil {
		return err
	}
	cfg := rest.CopyConfig(restCfg)
	cfg.QPS, cfg.Burst = reportQPS, reportBurst
	reportClient, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("creating the API client for reports: %w", err)
	}
	leases, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("creating the API client for the background audit's Lease: %w", err)
	}
	m, err := background.NewMetrics(metrics.Registry, bo.NamespaceLabel)
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	a, err := background.New(bo, mgr.GetCache(), eng, reportClient, leases, m, ctrl.Log.WithName("audit"))
	if err != nil {
		return err
	}
	return mgr.Add(a)
}

// leaseNamespace is the namespace of the background audit's Lease:
// BackgroundAudit.LeaseNamespace; else $POD_NAMESPACE; else the namespace
// of the kubeconfig's context (in a pod: the service account's); else
// "default", which every cluster has.
func (o *Options) leaseNamespace() string {
	if ns := cmp.Or(o.BackgroundAudit.LeaseNamespace, os.Getenv("POD_NAMESPACE")); ns != "" { // o.BackgroundAudit is set
		return ns
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	ns, _, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).Namespace()
	if err != nil || ns == "" {
		return "default"
	}
	return ns
}
