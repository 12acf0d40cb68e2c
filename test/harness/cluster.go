package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Names of what StartCluster creates.
const (
	// NodeName is the simulated node that kwok runs pods on.
	NodeName = "kwok-node-0"
	// DefaultStorageClass is the cluster's default StorageClass. Its claims
	// are provisioned and resized by kwok (provisioner Provisioner).
	DefaultStorageClass = "standard"
	// Provisioner provisions and resizes volumes by itself: kwok plays its
	// external-provisioner and external-resizer (kwok/storage-stages.yaml).
	Provisioner = "fake.csi.stsguard.io"
	// ManualResizeProvisioner provisions volumes but leaves resizing to the
	// test, which sets status.capacity itself (to hold a resize midway).
	ManualResizeProvisioner = "manual-resize.fake.csi.stsguard.io"
	// kwokNodeAnnotation marks the nodes kwok manages.
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
)

//go:embed kwok/storage-stages.yaml
var storageStages []byte

// clusterBinaries are the programs StartCluster runs besides the apiserver
// and etcd, all built into bin/k8s by `make envtest-assets` (and into
// bin/k8s-<version> by `make test-versions`).
var clusterBinaries = []string{"kube-controller-manager", "kube-scheduler", "kwok", "kubectl", "kwok-stages.yaml"}

// Cluster is a ControlPlane that answers back: kube-controller-manager (every
// controller: StatefulSet, garbage collector, PV binder, ...), kube-scheduler,
// and kwok playing the kubelet of one simulated node (NodeName), so that pods
// are scheduled, become Running and Ready, and are deleted, without
// containers. kwok also plays a CSI driver's external provisioner and
// resizer for the StorageClasses of Provisioner and ManualResizeProvisioner.
type Cluster struct {
	*ControlPlane
	// Kubeconfig is the path of an admin kubeconfig, for kubectl and the
	// stsguard commands.
	Kubeconfig string
	// Dir holds the kubeconfig, the components' configuration and their logs
	// (<component>.log). Stop removes it.
	Dir        string
	components []*component
	kcmFlags   []string
	// apiserver is the kube-apiserver RestartAPIServer started, if any
	// (envtest's own one has exited then).
	apiserver *component
}

// component is one process of the cluster.
type component struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error // set before exited is closed
}

// StartCluster starts the apiserver and etcd as Start does (with the
// ServiceAccount admission plugin on, as in a real cluster), then
// kube-controller-manager, kube-scheduler and kwok as processes, creates the
// simulated node and the default StorageClass, and returns once the node is
// Ready and the controllers answer. It returns an error naming the
// component and the end of its log when one fails to start; stop the
// cluster with Stop in every case where the error is nil.
func StartCluster() (*Cluster, error) { return StartClusterWith(ClusterOptions{}) }

// ClusterOptions change the cluster StartClusterWith starts. The zero value
// is StartCluster's cluster.
type ClusterOptions struct {
	// APIServerAddress, when valid, is the address the apiserver listens on
	// (its serving certificate names it, with localhost) instead of
	// 127.0.0.1, such as a Network's Gateway, which processes in the
	// Network's namespaces reach.
	APIServerAddress netip.Addr
	// APIServerFlags are added to the apiserver's command line (name without
	// dashes, value).
	APIServerFlags map[string]string
	// ControllerManagerFlags are added to kube-controller-manager's command
	// line (name without dashes, value).
	ControllerManagerFlags map[string]string
	// NoWebhooks starts the cluster without stsguard's webhook
	// configurations, for a test that installs them itself (with the chart).
	// ControlPlane.Webhook is then empty.
	NoWebhooks bool
}

// StartClusterWith is StartCluster with o.
func StartClusterWith(o ClusterOptions) (*Cluster, error) {
	assets := AssetsDir()
	for _, b := range clusterBinaries {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return nil, fmt.Errorf("%s missing in %s: %s", b, assets, buildHint(assets))
		}
	}
	port := 0
	if o.APIServerAddress.IsValid() {
		l, err := net.Listen("tcp", netip.AddrPortFrom(o.APIServerAddress, 0).String())
		if err != nil {
			return nil, fmt.Errorf("finding a free port on %s for the apiserver: %w", o.APIServerAddress, err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	cp, err := start(func(env *envtest.Environment) {
		apiserver := env.ControlPlane.GetAPIServer()
		// envtest turns the ServiceAccount plugin off because it runs no
		// controller to create ServiceAccounts; this cluster does.
		apiserver.Configure().Disable("disable-admission-plugins")
		if o.APIServerAddress.IsValid() {
			// envtest picks an address and port on loopback unless given both.
			apiserver.SecureServing.ListenAddr.Address = o.APIServerAddress.String()
			apiserver.SecureServing.ListenAddr.Port = strconv.Itoa(port)
		}
		for name, value := range o.APIServerFlags {
			apiserver.Configure().Set(name, value)
		}
		if o.NoWebhooks {
			env.WebhookInstallOptions = envtest.WebhookInstallOptions{}
		}
	})
	if err != nil {
		return nil, err
	}
	cl := &Cluster{ControlPlane: cp}
	for name, value := range o.ControllerManagerFlags {
		cl.kcmFlags = append(cl.kcmFlags, "--"+name+"="+value)
	}
	if err := cl.start(assets); err != nil {
		return nil, errors.Join(err, cl.Stop())
	}
	return cl, nil
}

func (cl *Cluster) start(assets string) error {
	var err error
	if cl.Dir, err = os.MkdirTemp("", "stsguard-cluster-"); err != nil {
		return err
	}
	cl.Kubeconfig = filepath.Join(cl.Dir, "kubeconfig")
	if err := cl.WriteKubeconfig(cl.Kubeconfig); err != nil {
		return err
	}
	rootCA := filepath.Join(cl.Dir, "ca.crt")
	if err := os.WriteFile(rootCA, cl.Config.CAData, 0o600); err != nil {
		return err
	}
	stages, err := os.ReadFile(filepath.Join(assets, "kwok-stages.yaml"))
	if err != nil {
		return err
	}
	kwokConfig := filepath.Join(cl.Dir, "kwok.yaml")
	if err := os.WriteFile(kwokConfig, slices.Concat(stages, []byte("\n---\n"), storageStages), 0o600); err != nil {
		return err
	}

	ports := make([]int, 3)
	for i := range ports {
		addr, err := FreeAddr()
		if err != nil {
			return err
		}
		ports[i] = Port(addr)
	}
	kcmPort, schedPort, kwokPort := ports[0], ports[1], ports[2]
	common := []string{"--kubeconfig=" + cl.Kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1"}
	if gates := FeatureGates(); gates != "" {
		common = append(common, "--feature-gates="+gates) // the apiserver's (see start)
	}
	if err := cl.run(assets, "kube-controller-manager", slices.Concat(common, []string{
		"--secure-port=" + strconv.Itoa(kcmPort),
		"--controllers=*",
		"--use-service-account-credentials=false",
		"--root-ca-file=" + rootCA,
		"--service-account-private-key-file=" + filepath.Join(cl.Env.ControlPlane.APIServer.CertDir, "sa-signer.key"),
	}, cl.kcmFlags)...); err != nil {
		return err
	}
	if err := cl.run(assets, "kube-scheduler", append(common, "--secure-port="+strconv.Itoa(schedPort))...); err != nil {
		return err
	}
	if err := cl.run(assets, "kwok",
		"--kubeconfig="+cl.Kubeconfig,
		"--config="+kwokConfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+kwokNodeAnnotation+"=fake",
		"--cidr=10.244.0.0/16", // pod IPs; the apiserver's service range is 10.0.0.0/24
		// The node's heartbeat is its Lease in kube-node-lease, as a
		// kubelet's is (the node-heartbeat-with-lease stage renews its
		// status only every 10 minutes). Without the Lease, which a
		// --config holding only Stages leaves off, the node lifecycle
		// controller marked the node NotReady every 50 s or so and set every
		// pod's Ready condition to False, which kwok never set back: a
		// StatefulSet rollout then waited forever.
		"--node-lease-duration-seconds=40",
		"--server-address=127.0.0.1:"+strconv.Itoa(kwokPort),
	); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := client.New(cl.Config, client.Options{})
	if err != nil {
		return err
	}
	if err := cl.createNodeAndStorage(ctx, c); err != nil {
		return err
	}
	for _, hc := range []struct{ name, url string }{
		{"kube-controller-manager", fmt.Sprintf("https://127.0.0.1:%d/healthz", kcmPort)},
		{"kube-scheduler", fmt.Sprintf("https://127.0.0.1:%d/healthz", schedPort)},
	} {
		if err := cl.waitHealthy(ctx, hc.name, hc.url); err != nil {
			return err
		}
	}
	return cl.poll(ctx, "node "+NodeName+" Ready (kwok) and ServiceAccount default/default (kube-controller-manager)", func(ctx context.Context) (bool, error) {
		node := &corev1.Node{}
		if err := c.Get(ctx, client.ObjectKey{Name: NodeName}, node); err != nil {
			return false, nil
		}
		ready := false
		for _, cond := range node.Status.Conditions {
			ready = ready || cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue
		}
		sa := &corev1.ServiceAccount{}
		return ready && c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "default"}, sa) == nil, nil
	})
}

// createNodeAndStorage creates the simulated node (without the taint kwok's
// docs suggest: every pod of this cluster is meant to run on it) and the
// default StorageClass.
func (cl *Cluster) createNodeAndStorage(ctx context.Context, c client.Client) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        NodeName,
		Annotations: map[string]string{kwokNodeAnnotation: "fake"},
		Labels: map[string]string{
			"kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok",
		},
	}}
	if err := c.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating node %s: %w", NodeName, err)
	}
	sc := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        DefaultStorageClass,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:          Provisioner,
		AllowVolumeExpansion: ptr.To(true),
		VolumeBindingMode:    ptr.To(storagev1.VolumeBindingImmediate),
		ReclaimPolicy:        ptr.To(corev1.PersistentVolumeReclaimDelete),
	}
	if err := c.Create(ctx, sc); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating StorageClass %s: %w", DefaultStorageClass, err)
	}
	return nil
}

// run starts name in assets with args, its output in Dir/<name>.log.
func (cl *Cluster) run(assets, name string, args ...string) error {
	logPath := filepath.Join(cl.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(assets, name), args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test binary
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	comp := &component{name: name, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() {
		comp.err = cmd.Wait()
		f.Close()
		close(comp.exited)
	}()
	cl.components = append(cl.components, comp)
	return nil
}

// poll runs cond until it is true, failing early when a component exits.
func (cl *Cluster) poll(ctx context.Context, what string, cond wait.ConditionWithContextFunc) error {
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		for _, comp := range cl.components {
			select {
			case <-comp.exited:
				return false, fmt.Errorf("%s exited (%v); end of %s:\n%s", comp.name, comp.err, comp.log, tail(comp.log, 20))
			default:
			}
		}
		return cond(ctx)
	})
	if err != nil {
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}

// waitHealthy polls url (a component's /healthz, served with a self-signed
// certificate on loopback) until it answers 200.
func (cl *Cluster) waitHealthy(ctx context.Context, name, url string) error {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, // our own component on loopback, self-signed
	}}
	return cl.poll(ctx, name+" healthz", func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// Stop stops kwok, the scheduler and the controller manager (first, since
// the apiserver does not stop while their watches are open), then the
// apiserver (the one RestartAPIServer started, if any) and etcd, and
// removes Dir. Stop whatever else watches the
// apiserver (stsguard serve) before calling it.
func (cl *Cluster) Stop() error {
	var errs []error
	for i := len(cl.components) - 1; i >= 0; i-- {
		comp := cl.components[i]
		_ = comp.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-comp.exited:
		case <-time.After(10 * time.Second):
			_ = comp.cmd.Process.Kill()
			<-comp.exited
		}
	}
	cl.components = nil
	if cl.apiserver != nil {
		// Before envtest's Stop, which removes its certificate directory
		// and finds its own apiserver process exited.
		if killed, err := cl.apiserver.stop(30 * time.Second); err != nil || killed {
			errs = append(errs, fmt.Errorf("stopping kube-apiserver: killed %v: %v", killed, err))
		}
		cl.apiserver = nil
	}
	if cl.ControlPlane != nil {
		errs = append(errs, cl.ControlPlane.Stop())
	}
	if cl.Dir != "" {
		errs = append(errs, os.RemoveAll(cl.Dir))
	}
	return errors.Join(errs...)
}

// ComponentLog returns the end of a component's log (n lines), for a test
// that wants to show why a controller did not act.
func (cl *Cluster) ComponentLog(name string, n int) string {
	return tail(filepath.Join(cl.Dir, name+".log"), n)
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
