package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// Faults of the control plane itself, for tests that measure what they do
// to stsguard: the kube-apiserver restarted, etcd paused.
//
// envtest cannot restart its apiserver as a cluster does: its Start
// generates a new CA, serving certificate and user credentials, so that
// every client (the stsguard replicas' kubeconfigs, the controllers', the
// test's) would stop trusting it. RestartAPIServer instead stops the
// process and runs the same program with the same arguments, environment
// and certificate directory, on the same address: the restart an apiserver
// gets from its kubelet or systemd.

// APIServerRestart is what RestartAPIServer did.
type APIServerRestart struct {
	// Exit is the time from SIGTERM to the old process's exit, Down the time
	// from SIGTERM until the new one's /readyz answered 200.
	Exit, Down time.Duration
	// Killed is true when the old process outlived the grace period and
	// SIGKILL ended it.
	Killed bool
}

// RestartAPIServer restarts the kube-apiserver as a kubelet restarts a
// static pod: SIGTERM, SIGKILL when it has not exited after grace, then the
// same command again (its output in Dir/kube-apiserver.log); it returns
// once /readyz answers 200. A kube-apiserver with watches open takes its
// shutdown timeout (60 s) to exit unless it runs with
// --shutdown-send-retry-after (then: the requests in flight, then 2 s). The
// stopped process was either envtest's (whose Stop, in Cluster.Stop, then
// finds it exited and only removes its directories) or one that an earlier
// RestartAPIServer started (which Cluster.Stop stops).
//
// Every client's informers reconnect with client-go's backoff (doubling
// from 0.8 s up to 30 s, jittered, reset only after 2 min without a
// failure): for up to a minute after /readyz, kube-controller-manager, the
// scheduler, kwok, a ProcessNode and stsguard may still act on what they
// saw before the restart (a node marked NotReady for a missed Lease, a pod
// scheduled late).
func (cl *Cluster) RestartAPIServer(ctx context.Context, grace time.Duration) (APIServerRestart, error) {
	var r APIServerRestart
	old, err := cl.apiserverProcess()
	if err != nil {
		return r, err
	}
	logPath := filepath.Join(cl.Dir, "kube-apiserver.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return r, err
	}
	defer f.Close()
	stopped := time.Now()
	if cl.apiserver != nil {
		r.Killed, err = cl.apiserver.stop(grace)
		cl.apiserver = nil
	} else {
		r.Killed, err = stopChild(old, grace)
	}
	if err != nil {
		return r, fmt.Errorf("stopping kube-apiserver (pid %d): %w", old.pid, err)
	}
	r.Exit = time.Since(stopped)
	fmt.Fprintf(f, "--- restarted by the test at %s (the previous process exited %s after SIGTERM, killed: %v)\n",
		time.Now().Format(time.RFC3339Nano), r.Exit.Round(time.Millisecond), r.Killed)
	// The listener of the old process is closed with it; the new one binds
	// the same address (Go sets SO_REUSEADDR, so TIME_WAIT does not hold it).
	cmd := exec.Command(old.exe, old.args[1:]...)
	cmd.Env = old.env
	cmd.Dir = old.dir
	cmd.Stdout, cmd.Stderr = f, f
	// As envtest starts it (a group of its own), and never outliving the
	// test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	comp, err := startComponent("kube-apiserver", cmd, logPath)
	if err != nil {
		return r, err
	}
	cl.apiserver = comp
	if err := cl.WaitAPIServerReady(ctx); err != nil {
		return r, err
	}
	r.Down = time.Since(stopped)
	return r, nil
}

// apiserverProcess finds the running kube-apiserver of this cluster: a
// child of this process running kube-apiserver with the cluster's
// --cert-dir and --secure-port (other tests on the machine run apiservers
// of their own).
func (cl *Cluster) apiserverProcess() (procInfo, error) {
	s := cl.Env.ControlPlane.APIServer
	if s == nil || s.CertDir == "" || s.SecureServing.Port == "" {
		return procInfo{}, errors.New("the cluster's kube-apiserver is not running")
	}
	return childProcess("kube-apiserver", "--cert-dir="+s.CertDir, "--secure-port="+s.SecureServing.Port)
}

// WaitAPIServerReady polls the apiserver's /readyz until it answers 200,
// for at most 90 s, failing at once when the apiserver RestartAPIServer
// started exits.
func (cl *Cluster) WaitAPIServerReady(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(cl.Config)
	if err != nil {
		return err
	}
	comp := cl.apiserver
	var last string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		if comp != nil {
			select {
			case <-comp.exited:
				return false, fmt.Errorf("kube-apiserver exited (%v); end of %s:\n%s", comp.err, comp.log, tail(comp.log, 20))
			default:
			}
		}
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").Timeout(2 * time.Second).DoRaw(ctx)
		if err != nil {
			last = fmt.Sprintf("%v %s", err, bytes.TrimSpace(body))
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("kube-apiserver not ready: %s: %w", last, err)
	}
	return nil
}

// PauseEtcd stops the cluster's etcd with SIGSTOP, waits d, and resumes it
// with SIGCONT: a member that stops answering (a disk stall, a long GC
// pause) without losing a connection. It returns an error when it cannot
// find or signal the process; SIGCONT is sent whenever SIGSTOP was.
func (cl *Cluster) PauseEtcd(ctx context.Context, d time.Duration) (err error) {
	e := cl.Env.ControlPlane.Etcd
	if e == nil || e.DataDir == "" {
		return errors.New("the cluster's etcd is not running")
	}
	p, err := childProcess("etcd", "--data-dir="+e.DataDir)
	if err != nil {
		return err
	}
	if err := syscall.Kill(p.pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("SIGSTOP to etcd (pid %d): %w", p.pid, err)
	}
	defer func() {
		if cerr := syscall.Kill(p.pid, syscall.SIGCONT); cerr != nil {
			err = errors.Join(err, fmt.Errorf("SIGCONT to etcd (pid %d): %w", p.pid, cerr))
		}
	}()
	// The pause is the fault's length, not a wait for a condition.
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// procInfo is what /proc shows of a process: enough to run it again.
type procInfo struct {
	pid   int
	start string // starttime in /proc/<pid>/stat: tells a reused pid apart
	exe   string
	args  []string // argv, argv[0] included
	env   []string
	dir   string
}

// childProcess returns the one child of this process whose program is
// named name and whose arguments include every one of args. It returns an
// error when there is none, or more than one.
func childProcess(name string, args ...string) (procInfo, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return procInfo{}, err
	}
	me := os.Getpid()
	var found []procInfo
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		argv := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		if filepath.Base(argv[0]) != name || !containsAll(argv[1:], args) {
			continue
		}
		state, ppid, start, err := procStat(pid)
		if err != nil || ppid != me || state == "Z" {
			continue
		}
		p := procInfo{pid: pid, start: start, args: argv}
		if p.exe, err = os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil {
			return procInfo{}, err
		}
		if p.dir, err = os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil {
			return procInfo{}, err
		}
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			return procInfo{}, err
		}
		if s := strings.TrimSuffix(string(environ), "\x00"); s != "" {
			p.env = strings.Split(s, "\x00")
		}
		found = append(found, p)
	}
	switch len(found) {
	case 0:
		return procInfo{}, fmt.Errorf("no %s process of this test (pid %d) with %v", name, me, args)
	case 1:
		return found[0], nil
	default:
		return procInfo{}, fmt.Errorf("%d %s processes of this test (pid %d) with %v", len(found), name, me, args)
	}
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// procStat returns a process's state, parent pid and start time from
// /proc/<pid>/stat.
func procStat(pid int) (state string, ppid int, start string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, "", err
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", 0, "", fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return "", 0, "", fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	ppid, err = strconv.Atoi(f[1])
	// Field 22 of stat is starttime; f[0] is field 3.
	return f[0], ppid, f[19], err
}

// stopChild sends SIGTERM to p, a child that another goroutine waits for
// (envtest's), and waits until it has exited: a zombie, or reaped. After
// grace it sends SIGKILL, and reports so. It returns an error when it
// cannot signal p, or p outlives SIGKILL by 10 s.
func stopChild(p procInfo, grace time.Duration) (killed bool, err error) {
	if err := syscall.Kill(p.pid, syscall.SIGTERM); err != nil {
		return false, err
	}
	gone := func(context.Context) (bool, error) {
		state, _, start, err := procStat(p.pid)
		return errors.Is(err, fs.ErrNotExist) || err == nil && (state == "Z" || start != p.start), nil
	}
	ctx := context.Background()
	if wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, grace, true, gone) == nil {
		return false, nil
	}
	if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil {
		return true, err
	}
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, gone); err != nil {
		return true, errors.New("still running 10 s after SIGKILL")
	}
	return true, nil
}

// startComponent starts cmd, whose output goes to logPath, and waits for
// it in the background.
func startComponent(name string, cmd *exec.Cmd, logPath string) (*component, error) {
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	comp := &component{name: name, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() {
		comp.err = cmd.Wait()
		close(comp.exited)
	}()
	return comp, nil
}

// stop sends SIGTERM to the component and waits for it to exit, with
// SIGKILL after grace (and reports so).
func (comp *component) stop(grace time.Duration) (killed bool, err error) {
	if err := comp.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return false, err
	}
	select {
	case <-comp.exited:
		return false, nil
	case <-time.After(grace):
		_ = comp.cmd.Process.Kill()
		<-comp.exited
		return true, nil
	}
}
