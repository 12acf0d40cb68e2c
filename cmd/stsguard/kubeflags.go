package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubectlFlagAnnotation marks the flags kubeFlags adds, so that help lists
// them apart from the command's own (see kubectlUsageTemplate).
const kubectlFlagAnnotation = "stsguard_kubectl_flag"

// kubeFlags are kubectl's own flags that choose the cluster, the user and
// the namespace: k8s.io/cli-runtime's genericclioptions.ConfigFlags, which
// kubectl and its plugins use (--kubeconfig, --context, -n/--namespace,
// --cluster, --user, --as, --as-group, --as-uid, --server, --token,
// --request-timeout, ...). They resolve as kubectl resolves them: the flag,
// then $KUBECONFIG, then ~/.kube/config.
type kubeFlags struct {
	*genericclioptions.ConfigFlags
}

// bindKubeFlags adds kubectl's flags to cmd. Flags named in without are
// left out, for a command that gives the name another meaning (audit's
// --cluster says what to audit; with it, the context chooses the
// kubeconfig cluster).
func bindKubeFlags(cmd *cobra.Command, without ...string) *kubeFlags {
	cf := genericclioptions.NewConfigFlags(false)
	// stsguard knows the types it reads and does no discovery, which is all
	// kubectl's --cache-dir is for.
	cf.CacheDir = nil
	for _, name := range without {
		switch name {
		case "cluster":
			cf.ClusterName = nil
		default:
			panic("bindKubeFlags: cannot leave out --" + name)
		}
	}
	fs := pflag.NewFlagSet("kubectl", pflag.ContinueOnError)
	cf.AddFlags(fs)
	fs.VisitAll(func(f *pflag.Flag) {
		_ = fs.SetAnnotation(f.Name, kubectlFlagAnnotation, []string{"true"})
	})
	cmd.Flags().AddFlagSet(fs)
	cmd.SetUsageTemplate(kubectlUsageTemplate(cmd))
	return &kubeFlags{cf}
}

// namespace is the value of -n/--namespace: "" when it was not given.
func (k *kubeFlags) namespace() string { return *k.Namespace }

// load returns the REST config and namespace the flags select, as kubectl
// resolves them: -n, else the context's namespace, else "default".
func (k *kubeFlags) load() (*rest.Config, string, error) {
	cc := k.ToRawKubeConfigLoader()
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("loading kubeconfig: %w", err)
	}
	// With no kubeconfig at all, no --server, no $KUBERNETES_MASTER and not
	// in a pod, kubectl's loader falls back to http://localhost:8080 and the
	// first request is refused; say what is missing instead.
	if raw, err := cc.RawConfig(); err == nil && clientcmdapi.IsConfigEmpty(&raw) &&
		*k.APIServer == "" && os.Getenv("KUBERNETES_MASTER") == "" && cfg.Host == clientcmd.ClusterDefaults.Server {
		return nil, "", fmt.Errorf("loading kubeconfig: %w", genericclioptions.ErrEmptyConfig)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("reading the namespace from kubeconfig: %w", err)
	}
	return cfg, ns, nil
}

// addTemplateFuncs registers the functions the usage templates of the
// commands with kubectl flags call (ownFlagUsages, kubectlFlagUsages) in
// cobra's template functions. Registering them again is harmless.
func addTemplateFuncs() {
	cobra.AddTemplateFunc("ownFlagUsages", func(c *cobra.Command) string { return flagUsages(c, false) })
	cobra.AddTemplateFunc("kubectlFlagUsages", func(c *cobra.Command) string { return flagUsages(c, true) })
}

// flagUsages lists the command's local flags that are kubectl's (kubectl
// true) or its own.
func flagUsages(c *cobra.Command, kubectl bool) string {
	fs := pflag.NewFlagSet(c.Name(), pflag.ContinueOnError)
	c.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if _, ok := f.Annotations[kubectlFlagAnnotation]; ok == kubectl {
			fs.AddFlag(f)
		}
	})
	return fs.FlagUsages()
}

const (
	localFlagsSection = "{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}"
	splitFlagsSection = "{{ownFlagUsages . | trimTrailingWhitespaces}}{{with kubectlFlagUsages .}}\n\n" +
		"Kubectl flags (choose the cluster, user and namespace as kubectl does):\n" +
		"{{. | trimTrailingWhitespaces}}{{end}}"
)

// kubectlUsageTemplate is cobra's usage template for cmd with the local
// flags in two sections: the command's own, then kubectl's, as kubectl
// keeps its own global flags apart (kubectl options).
func kubectlUsageTemplate(cmd *cobra.Command) string {
	t := cmd.UsageTemplate()
	if !strings.Contains(t, localFlagsSection) {
		panic("cobra's usage template no longer lists " + localFlagsSection)
	}
	return strings.Replace(t, localFlagsSection, splitFlagsSection, 1)
}
