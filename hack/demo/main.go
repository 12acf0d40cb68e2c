// Command demo shows stsguard on real input with no cluster of your own: it
// starts an envtest control plane (kube-apiserver and etcd from bin/k8s),
// runs `stsguard serve` registered through the webhook configurations of deploy/base, creates every
// manifest under examples/ through a real client, and prints per object what
// happened: created or denied (with the apiserver's message), the warnings,
// and what stsguard changed. It exits non-zero when the control plane or the
// webhook fails, seen as an expected outcome that did not happen.
//
// Usage: go run ./hack/demo -stsguard bin/stsguard
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/stsguard/stsguard/test/harness"
	"github.com/stsguard/stsguard/webhook/rules"
)

// expectation is an outcome the demo must see; a missing one means the
// webhook is not doing its job (failurePolicy Ignore would hide an outage).
type expectation struct {
	example, object, want string
}

var expectations = []expectation{
	{"mysql-plaintext-password", "StatefulSet/mysql", "DENIED"},
	{"mysql-plaintext-password", "StatefulSet/mysql", "[rule: weak-password]"},
	{"mysql-literal-password", "StatefulSet/mysql", "secretKeyRef mysql-credentials/mysql-root-password"},
	{"mysql-literal-password", "StatefulSet/mysql", "Secret/mysql-credentials created by stsguard"},
	{"web-without-service", "StatefulSet/web", "[rule: headless-service-missing]"},
	{"clusterip-service", "StatefulSet/web", "DENIED"},
	{"clusterip-service", "StatefulSet/web", "[rule: headless-service-not-headless]"},
	{"selector-mismatch", "StatefulSet/web", "[rule: headless-service-selector-mismatch]"},
	{"postgres", "StatefulSet/postgres", "secretKeyRef postgres-credentials/postgres-password"},
	{"cassandra", "StatefulSet/cassandra", "[rule: storage-class-not-found]"},
	{"web", "StatefulSet/web (canary update)", "partition=1"},
	{"guard", "Service/web selector change", "[rule: headless-service-selector-change]"},
	{"guard", "Secret/mysql-secret delete", "[rule: secret-in-use-delete]"},
	{"guard", "Secret/weak create", "[rule: weak-password]"},
	{"storage", "StatefulSet/postgres grow to 20Gi", "[rule: volume-claim-template-resize]"},
	{"storage", "StatefulSet/postgres grow to 20Gi", "stsguard expand statefulset/postgres -n postgres --template postgres-data --size 20Gi"},
	{"storage", "stsguard expand --dry-run", "dry run complete"},
}

func main() {
	bin := flag.String("stsguard", "bin/stsguard", "the stsguard binary to run")
	flag.Parse()
	if err := run(*bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run(bin string) error {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	start := time.Now()
	fmt.Println("starting kube-apiserver and etcd (envtest)...")
	cp, err := harness.Start()
	if err != nil {
		return err
	}
	defer cp.Stop()

	work, err := os.MkdirTemp("", "stsguard-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	kubeconfig := filepath.Join(work, "kubeconfig")
	if err := cp.WriteKubeconfig(kubeconfig); err != nil {
		return err
	}
	probe, _ := harness.FreeAddr()
	metrics, _ := harness.FreeAddr()
	logPath := filepath.Join(os.TempDir(), "stsguard-demo.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve",
		"--kubeconfig", kubeconfig,
		"--port", fmt.Sprint(cp.Webhook.LocalServingPort),
		"--cert-dir", cp.Webhook.LocalServingCertDir,
		"--metrics-bind-address", metrics,
		"--health-probe-bind-address", probe)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fmt.Printf("started %s serve (log: %s)\n", bin, logPath)
	readyCtx, readyCancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-exited:
			readyCancel()
		case <-readyCtx.Done():
		}
	}()
	if err := harness.WaitReady(readyCtx, probe, 60*time.Second); err != nil {
		return fmt.Errorf("stsguard did not become ready (see %s): %w", logPath, err)
	}
	fmt.Printf("stsguard ready after %s; webhooks registered from deploy/base\n\n", time.Since(start).Round(100*time.Millisecond))

	// A default StorageClass, as every real cluster has (kind's is "standard").
	if err := createDefaultStorageClass(ctx, cp.Config); err != nil {
		return err
	}

	seen := map[string][]string{} // example + object -> printed lines
	dirs, err := os.ReadDir(filepath.Join(harness.Root(), "examples"))
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		if err := runExample(ctx, cp.Config, d.Name(), seen); err != nil {
			return fmt.Errorf("example %s: %w", d.Name(), err)
		}
	}
	if err := canaryUpdate(ctx, cp.Config, seen); err != nil {
		return err
	}
	if err := guard(ctx, cp.Config, seen); err != nil {
		return err
	}
	if err := storage(ctx, cp.Config, bin, kubeconfig, seen); err != nil {
		return err
	}

	var missing []string
	for _, e := range expectations {
		if !strings.Contains(strings.Join(seen[e.example+" "+e.object], "\n"), e.want) {
			missing = append(missing, fmt.Sprintf("%s %s: want %q", e.example, e.object, e.want))
		}
	}
	select {
	case err := <-exited:
		return fmt.Errorf("stsguard serve exited early (see %s): %v", logPath, err)
	default:
	}
	if len(missing) > 0 {
		return fmt.Errorf("stsguard did not do what it should (see %s):\n  %s", logPath, strings.Join(missing, "\n  "))
	}
	fmt.Printf("all %d expected outcomes seen in %s\n", len(expectations), time.Since(start).Round(100*time.Millisecond))
	return nil
}

func runExample(ctx context.Context, cfg *rest.Config, name string, seen map[string][]string) error {
	c, w, err := harness.NewClient(cfg)
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(harness.Root(), "examples", name, "*.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	var objs []client.Object
	for _, f := range files {
		o, err := harness.DecodeFile(f)
		if err != nil {
			return err
		}
		objs = append(objs, o...)
	}
	namespaces := map[string]bool{}
	for _, o := range objs {
		if o.GetNamespace() == "" {
			o.SetNamespace(name)
		}
		if !namespaces[o.GetNamespace()] {
			namespaces[o.GetNamespace()] = true
			if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.GetNamespace()}}); err != nil && !apierrors.IsAlreadyExists(err) {
				return err
			}
		}
	}
	fmt.Printf("== examples/%s\n", name)
	for _, o := range objs {
		kind := fmt.Sprintf("%T", o)[strings.LastIndex(fmt.Sprintf("%T", o), ".")+1:]
		id := kind + "/" + o.GetName()
		var lines []string
		err := c.Create(ctx, o)
		switch {
		case apierrors.IsInvalid(err) || apierrors.IsForbidden(err):
			lines = append(lines, "DENIED: "+err.Error())
		case err != nil:
			return fmt.Errorf("creating %s: %w", id, err)
		default:
			lines = append(lines, "created in namespace "+o.GetNamespace())
		}
		for _, msg := range w.Take() {
			lines = append(lines, "warning: "+msg)
		}
		if sts, ok := o.(*appsv1.StatefulSet); ok && err == nil {
			lines = append(lines, describeStored(sts)...)
			secrets := &corev1.SecretList{}
			if err := c.List(ctx, secrets, client.InNamespace(sts.Namespace), client.MatchingLabels{rules.ManagedByLabel: rules.ManagedByValue}); err != nil {
				return err
			}
			for _, s := range secrets.Items {
				if s.Annotations[rules.StatefulSetAnnotation] == sts.Name {
					keys := make([]string, 0, len(s.Data))
					for k := range s.Data {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					lines = append(lines, fmt.Sprintf("Secret/%s created by stsguard (keys: %s; values not shown)", s.Name, strings.Join(keys, ", ")))
				}
			}
		}
		print(id, lines)
		seen[name+" "+id] = append(seen[name+" "+id], lines...)
	}
	fmt.Println()
	return nil
}

// describeStored summarises the fields stsguard may have set, as stored.
func describeStored(sts *appsv1.StatefulSet) []string {
	var out []string
	pod := sts.Spec.Template.Spec
	for _, c := range pod.Containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				out = append(out, fmt.Sprintf("stored: container %s env %s from secretKeyRef %s/%s", c.Name, e.Name, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key))
			}
		}
	}
	if pod.TerminationGracePeriodSeconds != nil {
		out = append(out, fmt.Sprintf("stored: terminationGracePeriodSeconds=%d", *pod.TerminationGracePeriodSeconds))
	}
	if ru := sts.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		out = append(out, fmt.Sprintf("stored: updateStrategy.rollingUpdate.partition=%d", *ru.Partition))
	}
	return out
}

func print(id string, lines []string) {
	fmt.Printf("  %s\n", id)
	for _, l := range lines {
		fmt.Printf("      %s\n", l)
	}
}

// canaryUpdate annotates the web example for a canary of 1 and changes its
// image: the update is staged on the highest ordinal only.
func canaryUpdate(ctx context.Context, cfg *rest.Config, seen map[string][]string) error {
	c, w, err := harness.NewClient(cfg)
	if err != nil {
		return err
	}
	fmt.Println("== canary rollout of examples/web: annotate stsguard.io/canary=\"1\" and change the image")
	sts := &appsv1.StatefulSet{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "web", Name: "web"}, sts); err != nil {
		return err
	}
	if sts.Annotations == nil {
		sts.Annotations = map[string]string{}
	}
	sts.Annotations[rules.CanaryAnnotation] = "1"
	sts.Spec.Template.Spec.Containers[0].Image = "nginx:1.27"
	if err := c.Update(ctx, sts); err != nil {
		return fmt.Errorf("canary update: %w", err)
	}
	lines := []string{fmt.Sprintf("updated: image nginx:1.27, replicas=%d", *sts.Spec.Replicas)}
	for _, msg := range w.Take() {
		lines = append(lines, "warning: "+msg)
	}
	lines = append(lines, describeStored(sts)...)
	lines = append(lines, fmt.Sprintf("partition=%d: only web-%d takes the new template first", *sts.Spec.UpdateStrategy.RollingUpdate.Partition, *sts.Spec.Replicas-1))
	print("StatefulSet/web (canary update)", lines)
	seen["web StatefulSet/web (canary update)"] = lines
	fmt.Println()
	return nil
}

// guard shows the Service and Secret side on the objects the examples
// created, with server-side dry runs (nothing changes). stsguard reads
// StatefulSets from its informer cache, which sees them a moment after the
// API does, so each step is retried until it gives its answer or 10 s pass.
func guard(ctx context.Context, cfg *rest.Config, seen map[string][]string) error {
	c, w, err := harness.NewClient(cfg)
	if err != nil {
		return err
	}
	fmt.Println("== the Service and Secret side (server-side dry runs: nothing is changed)")
	steps := []struct {
		id   string
		want string
		do   func() error
	}{
		{"Service/web selector change", "headless-service-selector-change", func() error {
			svc := &corev1.Service{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "web", Name: "web"}, svc); err != nil {
				return err
			}
			svc.Spec.Selector = map[string]string{"app": "web-v2"}
			return c.Update(ctx, svc, client.DryRunAll)
		}},
		{"Secret/mysql-secret delete", "secret-in-use-delete", func() error {
			return c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "mysql-secret-ref", Name: "mysql-secret"}}, client.DryRunAll)
		}},
		{"Secret/weak create", "weak-password", func() error {
			return c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "weak"},
				StringData: map[string]string{"password": "changeme"}}, client.DryRunAll)
		}},
	}
	for _, st := range steps {
		var lines []string
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			w.Take()
			err := st.do()
			lines = nil
			switch {
			case apierrors.IsInvalid(err):
				lines = append(lines, "DENIED: "+err.Error())
			case err != nil:
				return false, err
			default:
				lines = append(lines, "allowed (dry run)")
			}
			for _, msg := range w.Take() {
				lines = append(lines, "warning: "+msg)
			}
			return strings.Contains(strings.Join(lines, "\n"), "[rule: "+st.want+"]"), nil
		})
		if err != nil && !wait.Interrupted(err) {
			return fmt.Errorf("%s: %w", st.id, err)
		}
		print(st.id, lines)
		seen["guard "+st.id] = lines
	}
	fmt.Println()
	return nil
}

// storage shows a volumeClaimTemplate resize on examples/postgres: the
// denial with its plan, then `stsguard expand --dry-run`. envtest runs no
// provisioner, so the demo creates and binds the PVCs as one would.
func storage(ctx context.Context, cfg *rest.Config, bin, kubeconfig string, seen map[string][]string) error {
	c, _, err := harness.NewClient(cfg)
	if err != nil {
		return err
	}
	fmt.Println("== growing a volumeClaimTemplate of examples/postgres from 10Gi to 20Gi")
	const ns, name, template = "postgres", "postgres", "postgres-data"
	for i := range 3 {
		if err := bindClaim(ctx, c, ns, rules.ClaimName(template, name, i), "10Gi"); err != nil {
			return err
		}
	}
	fmt.Println("  (bound PVCs postgres-data-postgres-0..2 of 10Gi, as the provisioner would)")
	id := "StatefulSet/postgres grow to 20Gi"
	var lines []string
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		sts := &appsv1.StatefulSet{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, sts); err != nil {
			return false, err
		}
		sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("20Gi")
		err := c.Update(ctx, sts, client.DryRunAll)
		if err == nil {
			lines = []string{"allowed?!"}
			return false, nil
		}
		lines = []string{"DENIED: " + err.Error()}
		return strings.Contains(err.Error(), "postgres-data-postgres-2 ("), nil
	})
	if err != nil && !wait.Interrupted(err) {
		return err
	}
	print(id, lines)
	seen["storage "+id] = lines

	out, err := exec.CommandContext(ctx, bin, "expand", "statefulset/"+name, "-n", ns, "--template", template, "--size", "20Gi",
		"--dry-run", "--kubeconfig", kubeconfig).CombinedOutput()
	lines = strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil {
		lines = append(lines, "FAILED: "+err.Error())
	}
	print("stsguard expand --dry-run", lines)
	seen["storage stsguard expand --dry-run"] = lines
	fmt.Println()
	return nil
}

// bindClaim creates PVC name in the default class with a PV bound to it.
func bindClaim(ctx context.Context, c client.Client, ns, name, size string) error {
	q := resource.MustParse(size)
	rwo := []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-" + name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity: corev1.ResourceList{corev1.ResourceStorage: q}, AccessModes: rwo, StorageClassName: "standard",
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "csi.example.com", VolumeHandle: name}},
			ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: name},
		},
	}
	if err := c.Create(ctx, pv); err != nil {
		return err
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("standard"), AccessModes: rwo, VolumeName: pv.Name,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: q}}},
	}
	if err := c.Create(ctx, pvc); err != nil {
		return err
	}
	pvc.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: rwo, Capacity: corev1.ResourceList{corev1.ResourceStorage: q}}
	return c.Status().Update(ctx, pvc)
}

// createDefaultStorageClass creates the default StorageClass "standard",
// expandable, as a managed cluster's CSI driver class would be.
func createDefaultStorageClass(ctx context.Context, cfg *rest.Config) error {
	c, _, err := harness.NewClient(cfg)
	if err != nil {
		return err
	}
	sc := &storagev1.StorageClass{
		ObjectMeta:           metav1.ObjectMeta{Name: "standard", Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner:          "example.com/csi",
		AllowVolumeExpansion: ptr.To(true),
	}
	if err := c.Create(ctx, sc); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	fmt.Println("created the default StorageClass \"standard\" (expandable), as a real cluster has")
	return nil
}
