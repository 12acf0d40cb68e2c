package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/audit"
	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/policy"
	"github.com/stsguard/stsguard/rules"
)

// exitError ends the command with a status code; an empty message prints
// nothing more (the report said it).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// Exit codes of `stsguard audit`.
const (
	exitDenied = 1 // something would be denied (or warned, with --fail-on warn)
	exitUsage  = 2 // a usage or input error
)

func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

func newAuditCommand() *cobra.Command {
	var (
		kf         *kubeFlags
		files      []string
		cluster    bool
		configFile string
		output     string
		failOn     string
	)
	cmd := &cobra.Command{
		Use:   "audit (-f PATH... | --cluster)",
		Short: "Report what stsguard would deny, warn about and change, for manifests or a live cluster",
		Long: `Replay StatefulSets, Services and Secrets through the webhook's rules, as
kubectl apply sends them to the apiserver, and report what stsguard would
deny, warn about, record for audit and change (with the JSON patch).

-f reads files, directories (recursively: *.yaml, *.yml, *.json) and - for
standard input; multi-document YAML and kind: List are read. StatefulSets in
apps/v1beta1 and apps/v1beta2 are read as apps/v1 (v1beta1's default
updateStrategy, OnDelete, is kept). Objects of other kinds are counted and
passed over. Objects without a namespace take --namespace; without it,
the kubeconfig context's namespace with --cluster (as kubectl apply -f),
else "default".

The objects are replayed one at a time in the order kubectl apply -f reads
them: the -f paths in the order given, a directory's files by name (as
kubectl apply -f DIR --recursive walks it), documents and List items in
order. Each is admitted or denied, as the mutating and then the validating
webhook would, against what the objects before it left: a denied object is
not stored, a Service created before the StatefulSet that names it keeps its
cluster IP (headless-service-default makes only a later one headless), the
Secret password-secret-ref writes exists afterwards, and an object that
exists already is an UPDATE of it with what kubectl apply would send.

--cluster reads the live objects through the kubeconfig, read-only, and
judges each as a CREATE of it would be judged among all of them (in
--namespace only, when it is given). With -f too, the files are replayed on
top of the cluster's objects of their namespace (--namespace, else the
context's).

--config is the policy file of stsguard serve: actions, mutations and
exemptions apply as they would in the webhook.

Exit status: 0 when nothing would be denied; 1 when something would (or a
Warn exists and --fail-on warn); 2 on a usage error or a manifest that cannot
be read (the others are still audited and reported).`,
		Example: `  stsguard audit -f manifests/
  helm template my-release ./chart | stsguard audit -f - -o sarif > stsguard.sarif
  stsguard audit --cluster --namespace prod --config policy.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 && !cluster {
				return usageError("nothing to audit: give -f PATH (files, directories, - for stdin) or --cluster")
			}
			if !slices.Contains(audit.Formats(), output) {
				return usageError("-o %q: use one of %s", output, strings.Join(audit.Formats(), ", "))
			}
			var failAction engine.Action
			switch strings.ToLower(failOn) {
			case "deny":
				failAction = engine.Deny
			case "warn":
				failAction = engine.Warn
			default:
				return usageError("--fail-on %q: use deny or warn", failOn)
			}
			cfg := engine.DefaultConfig()
			if configFile != "" {
				var err error
				if cfg, err = policy.Load(configFile); err != nil {
					return usageError("%v", err)
				}
			}
			eng, err := rules.New(cfg)
			if err != nil {
				return usageError("%v", err)
			}

			src := audit.Source{Files: files, Stdin: cmd.InOrStdin(), Namespace: kf.namespace()}
			if cluster {
				restCfg, contextNamespace, err := kf.load()
				if err != nil {
					return usageError("%v", err)
				}
				if src.Namespace == "" && len(files) > 0 {
					// As kubectl apply -f: the files' objects without a
					// namespace go to the context's, and are replayed on
					// top of that namespace's live objects.
					src.Namespace = contextNamespace
				}
				scheme := runtime.NewScheme()
				if err := clientgoscheme.AddToScheme(scheme); err != nil {
					return err
				}
				if src.Cluster, err = client.New(restCfg, client.Options{Scheme: scheme}); err != nil {
					return usageError("creating API client: %v", err)
				}
			}
			report, err := audit.Run(cmd.Context(), eng, src)
			if err != nil {
				return usageError("%v", err)
			}
			out := cmd.OutOrStdout()
			color := false
			if f, ok := out.(*os.File); ok && output == "text" && os.Getenv("NO_COLOR") == "" {
				color = term.IsTerminal(int(f.Fd()))
			}
			if err := audit.Write(out, report, output, color, failAction); err != nil {
				return err
			}
			switch {
			case report.Summary.Errors > 0:
				return &exitError{code: exitUsage}
			case report.Summary.Deny > 0, failAction == engine.Warn && report.Summary.Warn > 0:
				return &exitError{code: exitDenied}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&files, "filename", "f", nil, "manifest file, directory (recursive) or - for stdin (repeatable)")
	f.BoolVar(&cluster, "cluster", false, "audit the live cluster's objects (read-only, through the kubeconfig)")
	f.StringVar(&configFile, "config", "", "policy file (config.stsguard.io/v1alpha1 Policy), as for stsguard serve")
	f.StringVarP(&output, "output", "o", "text", "output format: "+strings.Join(audit.Formats(), ", "))
	f.StringVar(&failOn, "fail-on", "deny", "exit 1 when something would be denied (deny) or also warned about (warn)")
	// --cluster is audit's own: what to audit. The kubeconfig cluster
	// comes from the context (--context), as kubectl's --cluster would.
	kf = bindKubeFlags(cmd, "cluster")
	f.Lookup("namespace").Usage = `namespace of objects that set none (default "default"); with --cluster, the only namespace read (default: all)`
	return cmd
}
