package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Serving is a `stsguard serve` process that the apiserver of a control
// plane calls through the webhook configurations of deploy/base.
type Serving struct {
	// Log is the path of the file that holds what it printed.
	Log string
	// MetricsAddr and ProbeAddr are the loopback addresses of its /metrics
	// and of its /healthz and /readyz.
	MetricsAddr, ProbeAddr string
	cmd                    *exec.Cmd
	exited                 chan struct{}
	err                    error // set before exited is closed
}

// ServeBinary starts `bin serve` for cp: on the loopback address and port,
// and with the serving certificate, that cp's webhook configurations point
// at, with the admin kubeconfig at kubeconfig and any extra flags, printing
// into logPath (every address it listens on is loopback). It
// returns once /readyz answers 200 (informer cache synced, webhook
// serving), or an error naming the log when it exits or is not ready within
// 60 s. Stop it with Stop before stopping cp.
func ServeBinary(cp *ControlPlane, bin, kubeconfig, logPath string, extra ...string) (*Serving, error) {
	probe, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	metrics, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve",
		"--kubeconfig", kubeconfig,
		"--host", cp.Webhook.LocalServingHost,
		"--port", fmt.Sprint(cp.Webhook.LocalServingPort),
		"--cert-dir", cp.Webhook.LocalServingCertDir,
		"--metrics-bind-address", metrics,
		"--health-probe-bind-address", probe,
	}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &Serving{Log: logPath, MetricsAddr: metrics, ProbeAddr: probe, cmd: cmd, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		f.Close()
		close(s.exited)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := WaitReady(ctx, probe, 60*time.Second); err != nil {
		return nil, errors.Join(fmt.Errorf("stsguard serve did not become ready (log: %s): %w", logPath, err), s.Stop())
	}
	return s, nil
}

// Pid returns the process id, for reading its /proc/<pid>/stat and status.
func (s *Serving) Pid() int { return s.cmd.Process.Pid }

// Exited returns the error stsguard serve exited with, or nil while it runs.
func (s *Serving) Exited() error {
	select {
	case <-s.exited:
		if s.err == nil {
			return errors.New("stsguard serve exited")
		}
		return fmt.Errorf("stsguard serve exited: %w", s.err)
	default:
		return nil
	}
}

// Stop sends SIGTERM and waits up to 15 s for the process to exit (it
// drains in-flight requests first), then kills it.
func (s *Serving) Stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	return nil
}
