package main

import (
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/stsguard/stsguard/background"
	"github.com/stsguard/stsguard/certs"
	"github.com/stsguard/stsguard/internal/version"
	"github.com/stsguard/stsguard/reports"
	"github.com/stsguard/stsguard/server"
)

// newRootCommand is the stsguard command as run under its own name.
func newRootCommand() *cobra.Command { return newRootCommandAs(defaultName) }

// newRootCommandAs is the stsguard command whose help names it name: see
// commandName. As the kubectl plugin ("kubectl stsguard") it lists audit,
// expand, rules and version; serve stays available but hidden.
func newRootCommandAs(name string) *cobra.Command {
	addTemplateFuncs()
	root := &cobra.Command{
		Use:           "stsguard",
		Short:         "Admission webhook that keeps StatefulSets, their headless Services and their Secrets safe",
		SilenceUsage:  true,
		SilenceErrors: true, // main prints them, and sets the exit status
	}
	root.AddCommand(newServeCommand(), newRulesCommand(), newExpandCommand(), newAuditCommand(), newVersionCommand())
	// A bad flag is a usage error: exit status 2, as for audit's own checks.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError("%v", err) })
	if name != defaultName {
		asPlugin(root, name)
	}
	return root
}

func newServeCommand() *cobra.Command {
	var (
		o          server.Options
		auditOn    bool
		bo         background.Options
		reportsAPI string
	)
	zapOpts := zap.Options{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the admission webhooks for StatefulSets, Services and Secrets over HTTPS",
		Long: `Serve the mutating and validating admission webhooks for apps/v1 StatefulSets
and core/v1 Services and Secrets.

Certificates come from one of two places:
  --cert-dir       tls.crt and tls.key (for example a Secret cert-manager
                   writes, mounted), reloaded when they change. When the
                   directory holds neither, a self-signed CA and a serving
                   certificate for the --dns-name values are generated there
                   (with ca.crt, for the caBundle of the webhook configurations).
  --manage-certs   stsguard keeps a CA and a serving certificate in the Secret
                   --cert-secret (in $POD_NAMESPACE), writes the CA into the
                   caBundle of the webhook configurations named
                   --webhook-configuration-name, and rotates both when two
                   thirds of their life have passed. Replicas agree through
                   the Secret's resourceVersion. --cert-dir may not be set.

--config names a policy file (apiVersion: config.stsguard.io/v1alpha1,
kind: Policy; see examples/policy.yaml). It is reloaded when it changes; an
invalid file stops the start-up, an invalid change keeps the policy in force.

The background audit judges what already exists: every StatefulSet, Service
and Secret, as stsguard audit --cluster does but without mutating anything,
again whenever the object or one it depends on changes, and all of them every
--background-audit-interval. One replica does it, elected on a Lease in
--leader-election-namespace. Findings go to the stsguard_violations gauge and,
when the reports API's CustomResourceDefinition is installed, to one policy
report named stsguard per namespace (--reports-api).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bo.Reports = reports.API(reportsAPI)
			if !slices.Contains(reports.APIs, bo.Reports) {
				return usageError("--reports-api %q: use one of %v", bo.Reports, reports.APIs)
			}
			if auditOn {
				o.BackgroundAudit = &bo
			}
			if bo.Interval <= 0 || bo.MaxResults <= 0 || bo.JudgeQPS <= 0 {
				return usageError("--background-audit-interval, --reports-max-results and --background-audit-qps must be positive")
			}
			if *o.ShutdownDelay < 0 {
				return usageError("--shutdown-delay-duration %s is negative: give how long to keep answering after SIGTERM, such as 5s, or 0 to stop at once", *o.ShutdownDelay)
			}
			if o.ManageCerts && cmd.Flags().Changed("cert-dir") {
				return usageError("--cert-dir and --manage-certs exclude each other: --manage-certs serves the certificate it keeps in the Secret --cert-secret; drop one of them")
			}
			ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
			return server.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Port, "port", 9443, "HTTPS port of the webhook server")
	f.StringVar(&o.Host, "host", "", `address the webhook server listens on ("": every interface; 127.0.0.1: this machine only)`)
	f.StringVar(&o.CertDir, "cert-dir", server.DefaultCertDir, "directory of tls.crt and tls.key; generated (with ca.crt) when missing")
	f.StringSliceVar(&o.DNSNames, "dns-name", server.DefaultDNSNames(), "DNS name or IP address of a generated serving certificate (repeatable)")
	f.BoolVar(&o.ManageCerts, "manage-certs", false, "keep a CA and serving certificate in --cert-secret, inject the CA into the webhook configurations, rotate both")
	f.StringVar(&o.CertSecret, "cert-secret", server.DefaultCertSecret, "Secret that --manage-certs keeps (namespace: $POD_NAMESPACE, else stsguard-system)")
	f.StringVar(&o.WebhookConfigurationName, "webhook-configuration-name", "stsguard", "name of the Mutating- and ValidatingWebhookConfiguration whose caBundle --manage-certs writes")
	f.DurationVar(&o.CAValidity, "ca-validity", certs.DefaultCAValidity, "lifetime of a CA issued by --manage-certs (renewed after two thirds)")
	f.DurationVar(&o.CertValidity, "cert-validity", certs.DefaultValidity, "lifetime of a serving certificate issued by --manage-certs (renewed after two thirds)")
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, then in-cluster, then ~/.kube/config)")
	f.StringVar(&o.MetricsBindAddress, "metrics-bind-address", ":8080", `address of the Prometheus /metrics endpoint ("0" disables it)`)
	f.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz probes")
	f.StringVar(&o.PprofBindAddress, "pprof-bind-address", "", `address of Go's pprof profiles (/debug/pprof/, plain HTTP, no authentication; "" or "0": off); for profiling only, on a loopback address`)
	f.BoolVar(&o.EnableHTTP2, "enable-http2", false, "allow HTTP/2 on the webhook server (off because of HTTP/2 Rapid Reset, CVE-2023-44487)")
	f.StringVar(&o.ConfigFile, "config", "", "policy file (config.stsguard.io/v1alpha1 Policy), reloaded when it changes")
	o.ShutdownDelay = new(time.Duration)
	f.DurationVar(o.ShutdownDelay, "shutdown-delay-duration", server.DefaultShutdownDelay,
		"after SIGTERM, keep answering this long with /readyz failing and keep-alives off (each response closes its connection), then stop; in-flight requests finish (0: stop at once)")
	f.BoolVar(&auditOn, "background-audit", true, "judge the existing StatefulSets, Services and Secrets continuously (on the replica holding the Lease) into policy reports and stsguard_violations")
	f.DurationVar(&bo.Interval, "background-audit-interval", background.DefaultInterval, "how often the background audit judges everything again, besides each change")
	f.StringVar(&reportsAPI, "reports-api", string(reports.PolicyReport), fmt.Sprintf("reports API of the background audit: %s, %s or %s (metrics only)", reports.PolicyReport, reports.OpenReports, reports.NoReports))
	f.IntVar(&bo.MaxResults, "reports-max-results", reports.DefaultMaxResults, "results listed in one namespace's report; the rest are counted in its summary")
	f.BoolVar(&bo.NamespaceLabel, "violations-namespace-label", false, "add the resource_namespace label to stsguard_violations (one series per namespace, rule and action)")
	f.StringVar(&bo.LeaseNamespace, "leader-election-namespace", "", `namespace of the background audit's Lease (default $POD_NAMESPACE, then the kubeconfig context's namespace, then "default")`)
	f.StringVar(&bo.LeaseName, "leader-election-id", background.DefaultLeaseName, "name of the background audit's Lease")
	f.Float64Var(&bo.JudgeQPS, "background-audit-qps", background.DefaultJudgeQPS, "objects the background audit judges per second at most")
	gfs := flag.NewFlagSet("zap", flag.ContinueOnError)
	zapOpts.BindFlags(gfs)
	f.AddGoFlagSet(gfs)
	return cmd
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), version.String())
		},
	}
}
