package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/expand"
	"github.com/stsguard/stsguard/internal/apiwarnings"
)

// parseStatefulSet reads "statefulset/NAME" (also sts/, statefulsets/,
// statefulsets.apps/) or a bare NAME, as kubectl names a resource.
func parseStatefulSet(arg string) (string, error) {
	kind, name, found := strings.Cut(arg, "/")
	if !found {
		kind, name = "statefulset", arg
	}
	switch strings.ToLower(kind) {
	case "statefulset", "statefulsets", "sts", "statefulset.apps", "statefulsets.apps":
	default:
		return "", fmt.Errorf("%q: stsguard expand works on StatefulSets only; name one as statefulset/NAME", arg)
	}
	if name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("%q: name one StatefulSet as statefulset/NAME", arg)
	}
	return name, nil
}

func newExpandCommand() *cobra.Command {
	var (
		kf       *kubeFlags
		template string
		size     string
		dryRun   bool
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "expand statefulset/NAME --template TEMPLATE --size SIZE",
		Short: "Grow a volumeClaimTemplate of a running StatefulSet and all of its PVCs",
		Long: `Grow a volumeClaimTemplate of a running StatefulSet, the way Kubernetes allows it:

 1. check every PVC of the template (<template>-<statefulset>-<ordinal>, for
    ordinals start..start+replicas-1 and any leftover): it must be Bound, its
    StorageClass must set allowVolumeExpansion: true, and none may shrink.
    Otherwise nothing is changed;
 2. request the new size on each PVC and wait until its status.capacity
    reaches it, or it reports FileSystemResizePending (the file system grows
    when the pod restarts);
 3. delete the StatefulSet with propagationPolicy Orphan (pods and PVCs stay)
    and create it again from the same spec with the larger template, so that
    new ordinals get the new size. Before the delete, a server-side dry-run
    create checks that admission and validation accept the new StatefulSet;
 4. report the pods, which keep running: the StatefulSet controller re-adopts
    them.

It is idempotent: run it again after any interruption and it completes. While
the StatefulSet is being re-created, its new spec is kept in the Secret
stsguard-expand-<name>. --dry-run prints the plan and sends every write as a
server-side dry run.

Exit status: 0 when done, 1 on a refusal (nothing changed) or an error.`,
		Example: `  stsguard expand statefulset/mysql -n prod --template data --size 50Gi --dry-run
  stsguard expand statefulset/mysql -n prod --template data --size 50Gi`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := parseStatefulSet(args[0])
			if err != nil {
				return err
			}
			q, err := resource.ParseQuantity(size)
			if err != nil {
				return fmt.Errorf("--size %q: %w (write it as a quantity, like 20Gi)", size, err)
			}
			if q.Sign() <= 0 {
				return fmt.Errorf("--size %q: must be positive", size)
			}
			cfg, ns, err := kf.load()
			if err != nil {
				return err
			}
			warnings := &apiwarnings.Recorder{Next: rest.NewWarningWriter(cmd.ErrOrStderr(), rest.WarningWriterOptions{Deduplicate: true})}
			cfg.WarningHandlerWithContext = warnings
			scheme := runtime.NewScheme()
			if err := clientgoscheme.AddToScheme(scheme); err != nil {
				return err
			}
			c, err := client.New(cfg, client.Options{Scheme: scheme})
			if err != nil {
				return fmt.Errorf("creating API client: %w", err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return expand.Run(ctx, c, expand.Options{
				Namespace: ns, Name: name, Template: template, Size: q, DryRun: dryRun, Out: cmd.OutOrStdout(), Warnings: warnings,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&template, "template", "", "name of the volumeClaimTemplate to grow (required)")
	f.StringVar(&size, "size", "", "new storage request, a quantity such as 20Gi (required)")
	f.BoolVar(&dryRun, "dry-run", false, "print the plan and send every write as a server-side dry run; change nothing")
	f.DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long; run the same command again to resume")
	_ = cmd.MarkFlagRequired("template")
	_ = cmd.MarkFlagRequired("size")
	kf = bindKubeFlags(cmd)
	return cmd
}
