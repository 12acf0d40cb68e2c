package harness

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// ProcessNode is a node whose pods run as processes of this machine, each in
// a network namespace of a Network: a kubelet for pods whose image is a
// program built here (stsguard serve), so that the Deployment controller,
// the scheduler, the EndpointSlice controller and the apiserver's Service
// resolution act on them as in a cluster. kwok's simulated node runs no
// process; this one runs only what Images names.
//
// What it does of a kubelet's job, and nothing more:
//   - the Node (Ready, with NodeLabel) and its Lease in kube-node-lease,
//     renewed every 10 s;
//   - for a pod bound to the node: a ServiceAccount token bound to the pod
//     (TokenRequest), given to the process as $KUBECONFIG; the pod's env
//     (values, fieldRef metadata.*, resourceFieldRef limits.*); its
//     ConfigMap, Secret and emptyDir volumes written into a directory, whose
//     path replaces the mountPath in the container's args (the
//     ServiceAccount's projected volume is left out: $KUBECONFIG stands for
//     it); the container's image mapped to a program by Images;
//   - status: podIP the namespace's address, Running, Ready from the
//     readinessProbe (httpGet, with its period, timeout and thresholds);
//     the livenessProbe restarts the process after failureThreshold
//     failures, as an exit does;
//   - deletion: preStop (sleep), then SIGTERM, then SIGKILL when the
//     grace period is over, then the pod is deleted with grace 0, as a
//     kubelet does; Terminations records how long each process took to
//     exit after SIGTERM.
type ProcessNode struct {
	// Name is the Node's name.
	Name string
	// Images maps a container image to the program that runs it.
	Images map[string]string
	// Dir holds each pod's directory (volumes, kubeconfig, log).
	Dir string

	cfg     *rest.Config
	cs      kubernetes.Interface
	net     *Network
	free    chan *Host
	stop    context.CancelFunc
	factory informers.SharedInformerFactory
	wg      sync.WaitGroup
	mu      sync.Mutex
	stopped bool // under mu: no pod is started once Stop has begun
	pods    map[types.UID]*podRun
	terms   []Termination
}

// NodeLabel marks a ProcessNode's Node; a chart's nodeSelector sends pods
// there.
const NodeLabel = "stsguard.io/process-node"

// Termination is one pod's shutdown on a ProcessNode.
type Termination struct {
	Pod string
	// Drain is the time from SIGTERM to the process's exit.
	Drain time.Duration
	// Killed is true when the grace period ran out and SIGKILL ended it.
	Killed bool
}

type podRun struct {
	pod       *corev1.Pod
	terminate chan struct{}
	once      sync.Once
	proc      atomic.Pointer[process]
	// grace is the pod's deletionGracePeriodSeconds as last seen (a
	// second delete may shorten it); -1 until the pod is deleted.
	grace atomic.Int64
}

// Signal sends sig to the process of the pod namespace/name (SIGSTOP hangs
// it, SIGCONT resumes it), and returns an error when the node runs no such
// pod.
func (n *ProcessNode) Signal(namespace, name string, sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range n.pods {
		if r.pod.Namespace == namespace && r.pod.Name == name {
			if p := r.proc.Load(); p != nil {
				return p.cmd.Process.Signal(sig)
			}
		}
	}
	return fmt.Errorf("the process node runs no process for pod %s/%s", namespace, name)
}

// StartProcessNode creates the Node name on cl and starts its kubelet,
// running pods in the hosts of nw (one pod per host). Stop it with Stop,
// which kills its processes.
func StartProcessNode(ctx context.Context, cl *Cluster, nw *Network, name string, images map[string]string) (*ProcessNode, error) {
	cs, err := kubernetes.NewForConfig(cl.Config)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "stsguard-node-")
	if err != nil {
		return nil, err
	}
	n := &ProcessNode{Name: name, Images: images, Dir: dir, cfg: cl.Config, cs: cs, net: nw,
		free: make(chan *Host, len(nw.Hosts)), pods: map[types.UID]*podRun{}}
	for _, h := range nw.Hosts {
		n.free <- h
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", NodeLabel: "true",
		}},
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating node %s: %w", name, err)
	}
	if err := n.postNodeStatus(ctx); err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	n.stop = stop
	cleanup := func() {
		stop()
		n.wg.Wait()
		_ = os.RemoveAll(dir)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.heartbeat(runCtx)
	}()
	n.factory = informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", name).String()
	}))
	inf := n.factory.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { n.observe(runCtx, obj) },
		UpdateFunc: func(_, obj any) { n.observe(runCtx, obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			n.observe(runCtx, obj)
		},
	}); err != nil {
		cleanup()
		return nil, err
	}
	n.factory.Start(runCtx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		n.factory.Shutdown()
		cleanup()
		return nil, errors.New("the pod informer of the process node did not sync")
	}
	return n, nil
}

// Terminations returns the pods shut down so far, in order.
func (n *ProcessNode) Terminations() []Termination {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.terms)
}

// Logs returns, for each pod the node has run, the last n lines of what its
// container printed, for a test that wants to show why a pod did not get
// ready or stop in time.
func (n *ProcessNode) Logs(lines int) map[string]string {
	out := map[string]string{}
	dirs, _ := filepath.Glob(filepath.Join(n.Dir, "*", "container.log"))
	for _, f := range dirs {
		out[filepath.Base(filepath.Dir(f))] = tail(f, lines)
	}
	return out
}

// Stop kills every process the node runs and stops its kubelet.
func (n *ProcessNode) Stop() error {
	n.mu.Lock()
	n.stopped = true
	n.mu.Unlock()
	n.stop()
	n.factory.Shutdown()
	n.wg.Wait()
	return os.RemoveAll(n.Dir)
}

func (n *ProcessNode) postNodeStatus(ctx context.Context) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := n.cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		capacity := corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("110"),
		}
		node.Status = corev1.NodeStatus{
			Capacity: capacity, Allocatable: capacity,
			Phase:     corev1.NodeRunning,
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.net.Gateway.String()}, {Type: corev1.NodeHostName, Address: n.Name}},
			Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "process node",
				LastHeartbeatTime: now, LastTransitionTime: now,
			}},
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.36.3", OperatingSystem: "linux", Architecture: "amd64"},
		}
		_, err = n.cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
}

// heartbeat renews the node's Lease, as a kubelet does, so that the node
// lifecycle controller keeps it Ready.
func (n *ProcessNode) heartbeat(ctx context.Context) {
	leases := n.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	for {
		now := metav1.NewMicroTime(time.Now())
		lease, err := leases.Get(ctx, n.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, _ = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: n.Name, Namespace: corev1.NamespaceNodeLease},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(n.Name), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &now},
			}, metav1.CreateOptions{})
		case err == nil:
			lease.Spec.RenewTime = &now
			_, _ = leases.Update(ctx, lease, metav1.UpdateOptions{})
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
	}
}

func (n *ProcessNode) observe(ctx context.Context, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return
	}
	r, running := n.pods[pod.UID]
	switch {
	case !running && pod.DeletionTimestamp == nil && pod.Status.Phase == corev1.PodPending:
		r = &podRun{pod: pod.DeepCopy(), terminate: make(chan struct{})}
		r.grace.Store(-1)
		n.pods[pod.UID] = r
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.run(ctx, r)
			n.mu.Lock()
			delete(n.pods, pod.UID)
			n.mu.Unlock()
		}()
	case !running && pod.DeletionTimestamp != nil && pod.Status.Phase == corev1.PodPending:
		// Deleted before it ran here: nothing to stop, finish the deletion.
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.deletePod(ctx, pod)
		}()
	case running && pod.DeletionTimestamp != nil:
		if g := pod.DeletionGracePeriodSeconds; g != nil {
			r.grace.Store(*g)
		}
		r.once.Do(func() { close(r.terminate) })
	}
}

// process is one start of a pod's container.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func (n *ProcessNode) run(ctx context.Context, r *podRun) {
	pod := r.pod
	var host *Host
	select {
	case host = <-n.free:
	case <-ctx.Done():
		return
	case <-r.terminate: // deleted before a host was free: never started
		n.deletePod(ctx, pod)
		return
	}
	defer func() { n.free <- host }()
	if ctx.Err() != nil {
		return
	}
	dir := filepath.Join(n.Dir, pod.Namespace+"_"+pod.Name)
	spec, err := n.prepare(ctx, pod, host, dir)
	if err != nil {
		n.failPod(ctx, pod, err)
		n.awaitDeletion(ctx, r)
		return
	}
	start := func() (*process, error) {
		cmd := host.Command(spec.program, spec.args...)
		cmd.Env = spec.env
		f, err := os.OpenFile(filepath.Join(dir, "container.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = f, f
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			f.Close()
			return nil, err
		}
		p := &process{cmd: cmd, exited: make(chan struct{})}
		r.proc.Store(p)
		go func() {
			_ = cmd.Wait()
			f.Close()
			close(p.exited)
		}()
		return p, nil
	}
	p, err := start()
	if err != nil {
		n.failPod(ctx, pod, err)
		n.awaitDeletion(ctx, r)
		return
	}
	restarts := int32(0)
	startedAt := metav1.Now()
	n.setStatus(ctx, pod, host, false, restarts, startedAt)

	readiness := newProber(spec.container.ReadinessProbe, host, spec.container.Ports)
	liveness := newProber(spec.container.LivenessProbe, host, spec.container.Ports)
	ready := false
	for {
		tick := time.NewTimer(readiness.nextIn(liveness))
		select {
		case <-ctx.Done():
			tick.Stop()
			_ = p.cmd.Process.Kill()
			<-p.exited
			return
		case <-r.terminate:
			tick.Stop()
			// As a kubelet, keep probing readiness while the pod terminates,
			// so that the endpoint's serving condition follows /readyz.
			probing, stopProbing := context.WithCancel(ctx)
			probed := make(chan struct{})
			go func() {
				defer close(probed)
				for was := ready; probing.Err() == nil; {
					select {
					case <-probing.Done():
						return
					case <-time.After(readiness.nextIn(readiness)):
					}
					if readiness.due() {
						if now := readiness.probe(probing, was); now != was {
							was = now
							n.setStatus(probing, pod, host, now, restarts, startedAt)
						}
					}
				}
			}()
			drain, killed := n.stopContainer(ctx, r, p, time.Now())
			stopProbing()
			<-probed
			n.mu.Lock()
			n.terms = append(n.terms, Termination{Pod: pod.Namespace + "/" + pod.Name, Drain: drain, Killed: killed})
			n.mu.Unlock()
			n.deletePod(ctx, pod)
			return
		case <-p.exited:
			tick.Stop()
		case <-tick.C:
		}
		restart := false
		select {
		case <-p.exited:
			restart = true
		default:
			if liveness.due() && !liveness.probe(ctx, true) {
				// A kubelet kills a container that fails its liveness
				// probe as it stops one for a deletion: preStop, SIGTERM,
				// the grace period, SIGKILL.
				n.stopContainer(ctx, r, p, time.Now())
				restart = true
			}
		}
		if restart {
			restarts++
			if ready {
				ready = false
				n.setStatus(ctx, pod, host, false, restarts, startedAt)
			}
			// A kubelet's CrashLoopBackOff, shortened: 1 s more for each
			// restart, at most 10 s.
			select {
			case <-time.After(min(time.Duration(restarts)*time.Second, 10*time.Second)):
			case <-ctx.Done():
				return
			case <-r.terminate:
				n.deletePod(ctx, pod)
				return
			}
			if p, err = start(); err != nil {
				n.failPod(ctx, pod, err)
				n.awaitDeletion(ctx, r)
				return
			}
			startedAt = metav1.Now()
			readiness.reset()
			liveness.reset()
			n.setStatus(ctx, pod, host, false, restarts, startedAt)
			continue
		}
		if readiness.due() {
			if now := readiness.probe(ctx, ready); now != ready {
				ready = now
				n.setStatus(ctx, pod, host, ready, restarts, startedAt)
			}
		}
	}
}

// awaitDeletion waits, for a pod whose container could not start, until the
// pod is deleted, and finishes the deletion; or until the node stops.
func (n *ProcessNode) awaitDeletion(ctx context.Context, r *podRun) {
	select {
	case <-r.terminate:
		n.deletePod(ctx, r.pod)
	case <-ctx.Done():
	}
}

// stopContainer stops p as a kubelet stops a container, the grace period
// counted from begin: the preStop hook (sleep, cut short by the grace
// period), SIGTERM, and SIGKILL when the grace period is over (at least 2 s
// after SIGTERM, as a kubelet gives). The grace period is the pod's
// deletionGracePeriodSeconds as last seen (a second, shorter delete cuts it),
// else its terminationGracePeriodSeconds. It returns the time from SIGTERM
// to exit, and whether SIGKILL ended the process.
func (n *ProcessNode) stopContainer(ctx context.Context, r *podRun, p *process, begin time.Time) (time.Duration, bool) {
	grace := func() time.Duration {
		if g := r.grace.Load(); g >= 0 {
			return time.Duration(g) * time.Second
		}
		return time.Duration(ptr.Deref(r.pod.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
	}
	c := r.pod.Spec.Containers[0]
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		hook := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		select {
		case <-time.After(min(hook, max(grace()-time.Since(begin), 0))):
		case <-p.exited:
		case <-ctx.Done():
		}
	}
	term := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	killed := false
	select {
	case <-p.exited:
	case <-time.After(max(grace()-time.Since(begin), 2*time.Second)):
		killed = true
		_ = p.cmd.Process.Kill()
		<-p.exited
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	return time.Since(term), killed
}

// deletePod deletes the pod for good (grace 0), as a kubelet does once its
// containers are gone, and retries as a kubelet's sync does until the pod
// is gone, another pod has its name, or the node stops: an error (an
// apiserver restarting) must not leave it terminating forever.
func (n *ProcessNode) deletePod(ctx context.Context, pod *corev1.Pod) {
	_ = wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 10, Cap: 5 * time.Second},
		func(ctx context.Context) (bool, error) {
			err := n.cs.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
				GracePeriodSeconds: ptr.To[int64](0), Preconditions: metav1.NewUIDPreconditions(string(pod.UID)),
			})
			return err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err), nil
		})
}

func (n *ProcessNode) setStatus(ctx context.Context, pod *corev1.Pod, host *Host, ready bool, restarts int32, startedAt metav1.Time) {
	_ = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := n.cs.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != pod.UID {
			return nil
		}
		now := metav1.Now()
		cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
			status := corev1.ConditionFalse
			if ok {
				status = corev1.ConditionTrue
			}
			for _, c := range cur.Status.Conditions {
				if c.Type == t && c.Status == status {
					return c
				}
			}
			return corev1.PodCondition{Type: t, Status: status, LastTransitionTime: now}
		}
		c := pod.Spec.Containers[0]
		cur.Status.Phase = corev1.PodRunning
		cur.Status.HostIP = n.net.Gateway.String()
		cur.Status.HostIPs = []corev1.HostIP{{IP: n.net.Gateway.String()}}
		cur.Status.PodIP = host.Addr.String()
		cur.Status.PodIPs = []corev1.PodIP{{IP: host.Addr.String()}}
		if cur.Status.StartTime == nil {
			cur.Status.StartTime = &now
		}
		cur.Status.Conditions = []corev1.PodCondition{
			cond(corev1.PodScheduled, true), cond(corev1.PodInitialized, true),
			cond(corev1.ContainersReady, ready), cond(corev1.PodReady, ready),
		}
		cur.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: ready, Started: ptr.To(true), RestartCount: restarts,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: startedAt}},
		}}
		_, err = n.cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

// failPod records why a pod's container could not start, in its status, as
// a kubelet's Waiting reason.
func (n *ProcessNode) failPod(ctx context.Context, pod *corev1.Pod, cause error) {
	_ = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := n.cs.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: pod.Spec.Containers[0].Name, Image: pod.Spec.Containers[0].Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: cause.Error()}},
		}}
		_, err = n.cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

// containerSpec is what run starts for a pod.
type containerSpec struct {
	container corev1.Container
	program   string
	args      []string
	env       []string
}

// prepare writes the pod's volumes and kubeconfig into dir and returns the
// program, arguments and environment of its (single) container. It returns
// an error naming what it cannot run.
func (n *ProcessNode) prepare(ctx context.Context, pod *corev1.Pod, host *Host, dir string) (*containerSpec, error) {
	if len(pod.Spec.Containers) != 1 || len(pod.Spec.InitContainers) > 0 || len(pod.Spec.Containers[0].Command) > 0 {
		return nil, fmt.Errorf("the process node runs pods of one container, without command (the image's entrypoint), and no init containers; %s has %d and %d",
			pod.Name, len(pod.Spec.Containers), len(pod.Spec.InitContainers))
	}
	c := pod.Spec.Containers[0]
	program, ok := n.Images[c.Image]
	if !ok {
		return nil, fmt.Errorf("image %s: the process node has no program for it (it knows %v)", c.Image, slices.Sorted(maps.Keys(n.Images)))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	volumes := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		path := filepath.Join(dir, "volumes", v.Name)
		if err := os.MkdirAll(path, 0o700); err != nil {
			return nil, err
		}
		switch {
		case v.ConfigMap != nil:
			cm, err := n.cs.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			for k, val := range cm.Data {
				if err := os.WriteFile(filepath.Join(path, k), []byte(val), 0o600); err != nil {
					return nil, err
				}
			}
		case v.Secret != nil:
			s, err := n.cs.CoreV1().Secrets(pod.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			for k, val := range s.Data {
				if err := os.WriteFile(filepath.Join(path, k), val, 0o600); err != nil {
					return nil, err
				}
			}
		case v.EmptyDir != nil, v.Projected != nil:
			// Projected: the ServiceAccount's token, given as $KUBECONFIG.
		default:
			return nil, fmt.Errorf("volume %s: the process node supports configMap, secret and emptyDir volumes", v.Name)
		}
		volumes[v.Name] = path
	}
	args := slices.Clone(c.Args)
	for _, m := range c.VolumeMounts {
		for i, a := range args {
			if strings.Contains(a, m.MountPath) {
				args[i] = strings.Replace(a, m.MountPath, volumes[m.Name], 1)
			}
		}
	}
	kubeconfig, err := n.kubeconfig(ctx, pod, dir)
	if err != nil {
		return nil, err
	}
	env := []string{"KUBECONFIG=" + kubeconfig, "PATH=" + os.Getenv("PATH")}
	for _, e := range c.Env {
		value := e.Value
		if f := e.ValueFrom; f != nil {
			switch {
			case f.FieldRef != nil && f.FieldRef.FieldPath == "metadata.namespace":
				value = pod.Namespace
			case f.FieldRef != nil && f.FieldRef.FieldPath == "metadata.name":
				value = pod.Name
			case f.FieldRef != nil && f.FieldRef.FieldPath == "status.podIP":
				value = host.Addr.String()
			case f.ResourceFieldRef != nil && strings.HasPrefix(f.ResourceFieldRef.Resource, "limits."):
				q, ok := c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(f.ResourceFieldRef.Resource, "limits."))]
				if !ok {
					continue
				}
				value = strconv.FormatInt(q.Value(), 10)
			default:
				return nil, fmt.Errorf("env %s: the process node does not support this valueFrom", e.Name)
			}
		}
		env = append(env, e.Name+"="+value)
	}
	return &containerSpec{container: c, program: program, args: args, env: env}, nil
}

// kubeconfig writes a kubeconfig holding a token of the pod's
// ServiceAccount, bound to the pod, as a kubelet mounts one.
func (n *ProcessNode) kubeconfig(ctx context.Context, pod *corev1.Pod, dir string) (string, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tr, err := n.cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To[int64](3600),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token of ServiceAccount %s/%s: %w", pod.Namespace, sa, err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["cluster"] = &clientcmdapi.Cluster{Server: n.cfg.Host, CertificateAuthorityData: n.cfg.CAData}
	kc.AuthInfos["pod"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["pod"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "pod", Namespace: pod.Namespace}
	kc.CurrentContext = "pod"
	path := filepath.Join(dir, "kubeconfig")
	return path, clientcmd.WriteToFile(*kc, path)
}

// prober runs one httpGet probe of a container on its period.
type prober struct {
	spec     *corev1.Probe
	url      string
	client   *http.Client
	next     time.Time
	failures int32
}

func newProber(p *corev1.Probe, host *Host, ports []corev1.ContainerPort) *prober {
	if p == nil || p.HTTPGet == nil {
		return &prober{}
	}
	pr := &prober{spec: p.DeepCopy()}
	pr.reset()
	pr.client = &http.Client{Timeout: time.Duration(max(p.TimeoutSeconds, 1)) * time.Second}
	pr.url = fmt.Sprintf("http://%s:%d%s", host.Addr, portNumber(p.HTTPGet.Port, ports), p.HTTPGet.Path)
	return pr
}

// portNumber resolves a probe's port (a number, or a container port's name
// once the caller has filled ports).
func portNumber(p intstr.IntOrString, ports []corev1.ContainerPort) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

func (p *prober) reset() {
	if p.spec == nil {
		return
	}
	p.failures = 0
	p.next = time.Now().Add(time.Duration(p.spec.InitialDelaySeconds) * time.Second)
}

func (p *prober) period() time.Duration {
	return time.Duration(max(p.spec.PeriodSeconds, 1)) * time.Second
}

// nextIn is how long until the earlier of p's and q's next probe (a second
// when neither has a probe).
func (p *prober) nextIn(q *prober) time.Duration {
	d := time.Second
	for _, x := range []*prober{p, q} {
		if x.spec != nil {
			d = min(d, max(time.Until(x.next), 0))
		}
	}
	return d
}

func (p *prober) due() bool { return p.spec != nil && !time.Now().Before(p.next) }

// probe runs the probe and returns the container's state by it, as a
// kubelet keeps it: true after a success, false after failureThreshold
// failures in a row, and was (the state before) otherwise.
func (p *prober) probe(ctx context.Context, was bool) bool {
	p.next = time.Now().Add(p.period())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	resp, err := p.client.Do(req)
	ok := err == nil && resp.StatusCode >= 200 && resp.StatusCode < 400
	if resp != nil {
		resp.Body.Close()
	}
	if ok {
		p.failures = 0
		return true
	}
	p.failures++
	if p.failures >= max(p.spec.FailureThreshold, 1) {
		return false
	}
	return was
}
