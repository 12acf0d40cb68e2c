package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stsguard/stsguard/test/harness"
)

// Release and Namespace are the Helm release of stsguard the environment
// installs, and its namespace: the chart's defaults, so that the Service
// the webhooks call is stsguard.stsguard-system.svc.
const (
	Release   = "stsguard"
	Namespace = "stsguard-system"
)

// Env is stsguard on the production path: the chart installed with Helm
// (two replicas, its Service, its webhook configurations with `service`
// references and the caBundle that --manage-certs writes), its pods run as
// processes by a ProcessNode in network namespaces of a Network, and an
// apiserver that reaches them through the Service's EndpointSlices
// (--enable-aggregator-routing: no kube-proxy), with TLS verified against
// stsguard.stsguard-system.svc.
type Env struct {
	Cluster *harness.Cluster
	Net     *harness.Network
	Node    *harness.ProcessNode
	CS      kubernetes.Interface
	Client  client.Client
	// APIServerMetrics reads the apiserver's /metrics.
	APIServerMetrics prometheus.Gatherer
	helm             string
	helmHome         string
	log              func(format string, args ...any)
	// carried are the webhook counts of apiserver processes that
	// RestartAPIServer stopped: a new process counts from zero.
	carried harness.WebhookCounts
	// logMark is the length of the apiserver's log when the last Measure
	// began.
	logMark int64
}

// Options configure Start.
type Options struct {
	// Images maps the container images the charts run to programs.
	Images map[string]string
	// Log receives progress lines (testing.T.Logf, or a printer).
	Log func(format string, args ...any)
}

// Start starts the environment, without stsguard: Install puts it in. It
// returns harness.ErrNoNetwork, wrapped, when the machine cannot make
// network namespaces.
func Start(ctx context.Context, o Options) (*Env, error) {
	nw, err := harness.NewNetwork(4)
	if err != nil {
		return nil, err
	}
	cl, err := harness.StartClusterWith(harness.ClusterOptions{
		APIServerAddress: nw.Gateway,
		APIServerFlags: map[string]string{
			"enable-aggregator-routing": "true",
			// On SIGTERM (RestartAPIServer), answer the requests in flight and
			// exit, instead of waiting out the watches for 60 s.
			"shutdown-send-retry-after": "true",
		},
		// A pod's change reaches its EndpointSlice up to 2 s late, as in a
		// busy cluster (and later still where kube-proxy syncs its rules
		// on a period): the delay a stopping replica must cover.
		ControllerManagerFlags: map[string]string{"endpointslice-updates-batch-period": "2s"},
		NoWebhooks:             true,
	})
	if err != nil {
		return nil, errors.Join(err, nw.Close())
	}
	e := &Env{Cluster: cl, Net: nw, log: o.Log, APIServerMetrics: harness.APIServerMetrics(cl.Config)}
	if e.CS, err = kubernetes.NewForConfig(cl.Config); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	if e.Client, _, err = harness.NewClient(cl.Config); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	if e.Node, err = harness.StartProcessNode(ctx, cl, nw, "process-node-0", o.Images); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	e.helm = filepath.Join(harness.AssetsDir(), "helm")
	if _, err := os.Stat(e.helm); err != nil {
		return nil, errors.Join(fmt.Errorf("helm missing: run `make helm` (builds it into bin/k8s): %w", err), e.Stop())
	}
	if e.helmHome, err = os.MkdirTemp("", "stsguard-helm-"); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	return e, nil
}

// Stop stops stsguard's processes, the cluster and the network.
func (e *Env) Stop() error {
	var errs []error
	if e.Node != nil {
		errs = append(errs, e.Node.Stop())
	}
	if e.Cluster != nil {
		errs = append(errs, e.Cluster.Stop())
	}
	if e.helmHome != "" {
		errs = append(errs, os.RemoveAll(e.helmHome))
	}
	return errors.Join(append(errs, e.Net.Close())...)
}

// Values are the chart values every install and upgrade of Env gets: the
// pods on the process node, and the namespaces of the cluster's own
// machinery left alone.
func Values(extra map[string]any) map[string]any {
	v := map[string]any{
		"nodeSelector": map[string]any{harness.NodeLabel: "true"},
		"webhooks":     map[string]any{"excludedNamespaces": []any{"kube-node-lease", "kube-public"}},
	}
	for k, x := range extra {
		v[k] = x
	}
	return v
}

// FailValues are Values with failurePolicy Fail on every validating
// webhook.
func FailValues() map[string]any {
	fail := map[string]any{"failurePolicy": "Fail", "timeoutSeconds": 5}
	return Values(map[string]any{"webhooks": map[string]any{
		"excludedNamespaces": []any{"kube-node-lease", "kube-public"},
		"validating":         map[string]any{"statefulsets": fail, "services": fail, "secrets": fail},
	}})
}

// Helm runs helm with the cluster's kubeconfig and returns what it printed.
func (e *Env) Helm(args ...string) ([]byte, error) {
	cmd := exec.Command(e.helm, args...)
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+e.Cluster.Kubeconfig,
		"HELM_CONFIG_HOME="+filepath.Join(e.helmHome, "config"),
		"HELM_CACHE_HOME="+filepath.Join(e.helmHome, "cache"),
		"HELM_DATA_HOME="+filepath.Join(e.helmHome, "data"),
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return out.Bytes(), nil
}

// Install installs (or, when upgrade, upgrades to) the chart in chartDir
// with values, waits for the rollout, then for every webhook's caBundle.
func (e *Env) Install(ctx context.Context, chartDir string, values map[string]any, upgrade bool) error {
	raw, err := yaml.Marshal(values)
	if err != nil {
		return err
	}
	file := filepath.Join(e.helmHome, "values-"+rand.String(6)+".yaml")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		return err
	}
	verb := []string{"install", "--create-namespace"}
	if upgrade {
		verb = []string{"upgrade"}
	}
	args := append(verb, Release, chartDir, "--namespace", Namespace, "--values", file, "--wait", "--timeout", "3m")
	if _, err := e.Helm(args...); err != nil {
		return err
	}
	return e.WaitServing(ctx)
}

// WaitServing waits until the Deployment is rolled out, every webhook has
// a caBundle and the Service's EndpointSlices list every replica as ready.
func (e *Env) WaitServing(ctx context.Context) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := e.CS.AppsV1().Deployments(Namespace).Get(ctx, Release, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		if !rolledOut(d) {
			last = fmt.Sprintf("Deployment %s: %d updated, %d available, %d in all, of %d", d.Name, d.Status.UpdatedReplicas, d.Status.AvailableReplicas, d.Status.Replicas, *d.Spec.Replicas)
			return false, nil
		}
		if n, err := e.ReadyEndpoints(ctx); err != nil || n != int(*d.Spec.Replicas) {
			last = fmt.Sprintf("%d ready endpoints of Service %s (%v)", n, Release, err)
			return false, nil
		}
		mw, err := e.CS.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, Release, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		vw, err := e.CS.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, Release, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for _, w := range mw.Webhooks {
			if len(w.ClientConfig.CABundle) == 0 {
				last = "no caBundle in webhook " + w.Name
				return false, nil
			}
		}
		for _, w := range vw.Webhooks {
			if len(w.ClientConfig.CABundle) == 0 {
				last = "no caBundle in webhook " + w.Name
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("stsguard not serving: %s: %w", last, err)
	}
	return nil
}

func rolledOut(d *appsv1.Deployment) bool {
	want := *d.Spec.Replicas
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want &&
		d.Status.Replicas == want && d.Status.AvailableReplicas == want
}

// ReadyEndpoints counts the ready endpoints of stsguard's Service, as the
// apiserver's Service resolver picks among them.
func (e *Env) ReadyEndpoints(ctx context.Context) (int, error) {
	slices, err := e.CS.DiscoveryV1().EndpointSlices(Namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + Release})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range slices.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				n++
			}
		}
	}
	return n, nil
}

// Kubectl runs kubectl against the cluster and returns an error with what
// it printed when it fails.
func (e *Env) Kubectl(args ...string) (string, error) {
	res, err := harness.RunKubectl(e.Cluster.Kubeconfig, "", args...)
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return res.Stdout, fmt.Errorf("kubectl %s: exit %d: %s", strings.Join(args, " "), res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	return res.Stdout, nil
}

// RolloutRestart restarts stsguard's Deployment as `kubectl rollout
// restart` does and waits for `kubectl rollout status`, then for the old
// pods to be gone.
func (e *Env) RolloutRestart(ctx context.Context) error {
	if _, err := e.Kubectl("rollout", "restart", "deployment/"+Release, "-n", Namespace); err != nil {
		return err
	}
	if _, err := e.Kubectl("rollout", "status", "deployment/"+Release, "-n", Namespace, "--timeout=3m"); err != nil {
		return err
	}
	return e.WaitPodsGone(ctx)
}

// WaitPodsGone waits until stsguard's namespace holds only the Deployment's
// replicas (the terminating ones are gone) and the Service's EndpointSlices
// list those alone (they lag the pods by up to 2 s).
func (e *Env) WaitPodsGone(ctx context.Context) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := e.CS.AppsV1().Deployments(Namespace).Get(ctx, Release, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		pods, err := e.CS.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		var names []string
		for _, p := range pods.Items {
			names = append(names, p.Name)
		}
		endpoints, err := e.endpoints(ctx)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("pods %v, %d endpoints, %d replicas", names, endpoints, *d.Spec.Replicas)
		return len(pods.Items) == int(*d.Spec.Replicas) && endpoints == int(*d.Spec.Replicas), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the old pods to be gone: %s: %w", last, err)
	}
	return nil
}

// endpoints counts the endpoints of stsguard's Service, whatever their
// conditions.
func (e *Env) endpoints(ctx context.Context) (int, error) {
	slices, err := e.CS.DiscoveryV1().EndpointSlices(Namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + Release})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range slices.Items {
		n += len(s.Endpoints)
	}
	return n, nil
}

// Diagnose returns what shows why stsguard is not serving: its pods'
// phases and conditions, the Service's endpoints, the end of every
// replica's log, and the end of the controller manager's.
func (e *Env) Diagnose() string {
	var b strings.Builder
	ctx := context.Background()
	if pods, err := e.CS.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			fmt.Fprintf(&b, "pod %s: node %q phase %s podIP %s deleting %v\n", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP, p.DeletionTimestamp != nil)
			for _, c := range p.Status.Conditions {
				fmt.Fprintf(&b, "  %s=%s %s\n", c.Type, c.Status, c.Message)
			}
			for _, c := range p.Status.ContainerStatuses {
				if c.State.Waiting != nil {
					fmt.Fprintf(&b, "  waiting: %s: %s\n", c.State.Waiting.Reason, c.State.Waiting.Message)
				}
			}
		}
	}
	if slices, err := e.CS.DiscoveryV1().EndpointSlices(Namespace).List(ctx, metav1.ListOptions{}); err == nil {
		for _, s := range slices.Items {
			for _, ep := range s.Endpoints {
				fmt.Fprintf(&b, "endpoint %v of %s: ready %v\n", ep.Addresses, s.Name, ptrString(ep.Conditions.Ready))
			}
		}
	}
	for pod, log := range e.Node.Logs(6) {
		fmt.Fprintf(&b, "--- log of %s:\n%s\n", pod, log)
	}
	fmt.Fprintf(&b, "--- kube-controller-manager:\n%s\n", e.Cluster.ComponentLog("kube-controller-manager", 10))
	if _, err := os.Stat(e.apiserverLog()); err == nil {
		fmt.Fprintf(&b, "--- kube-apiserver (restarted):\n%s\n", e.Cluster.ComponentLog("kube-apiserver", 10))
	}
	return b.String()
}

// apiserverLog is where the kube-apiserver that RestartAPIServer started
// writes (envtest's own apiserver writes nowhere).
func (e *Env) apiserverLog() string { return filepath.Join(e.Cluster.Dir, "kube-apiserver.log") }

// WebhookFailures returns the calls to stsguard that failed open since the
// last Measure began, when the apiserver's log has them (after
// RestartAPIServer): when each failed and why, the first n.
func (e *Env) WebhookFailures(n int) []string {
	raw, err := os.ReadFile(e.apiserverLog())
	if err != nil || int64(len(raw)) < e.logMark {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(raw[e.logMark:]), "\n") {
		if _, after, ok := strings.Cut(line, "Failed calling webhook, failing open "); ok && len(out) < n {
			at, _, _ := strings.Cut(line, " ")
			if f := strings.Fields(line); len(f) > 1 {
				at = f[1] // klog: Lmmdd hh:mm:ss.uuuuuu
			}
			out = append(out, at+" "+after)
		}
	}
	return out
}

func ptrString(b *bool) string {
	if b == nil {
		return "unset"
	}
	return fmt.Sprint(*b)
}

func (e *Env) logf(format string, args ...any) {
	if e.log != nil {
		e.log(format, args...)
	}
}
