package harness

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
)

// Option is one thing Main sets up before a package's tests run, such as
// a control plane or stsguard serve. Main applies the options in the order
// given and undoes them in reverse order once the tests have run.
type Option func(*suite) error

// suite is what Main has set up so far.
type suite struct {
	// cp is the control plane started by WithControlPlane or WithCluster,
	// which WithServer serves on.
	cp *ControlPlane
	// stops undo the options applied, in the order applied.
	stops []stop
}

type stop struct {
	what string
	fn   func() error
}

func (s *suite) onStop(what string, fn func() error) { s.stops = append(s.stops, stop{what, fn}) }

// Main is the TestMain of a test package: it applies opts in order (for
// example WithLogs, WithControlPlane, WithServer), runs the tests, undoes
// the options in reverse order (stopping what they started) and exits with
// the tests' exit code. When an option fails it prints why on stderr, undoes
// the options applied before it and exits with 1 without running any test.
// An error while stopping is printed and does not change the exit code.
func Main(m *testing.M, opts ...Option) {
	os.Exit(run(m, opts...))
}

// run is Main without the exit: it returns the exit code.
func run(m interface{ Run() int }, opts ...Option) int {
	var s suite
	defer func() {
		for i := len(s.stops) - 1; i >= 0; i-- {
			if err := s.stops[i].fn(); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", s.stops[i].what, err)
			}
		}
	}()
	for _, o := range opts {
		if err := o(&s); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

// WithLogs sends controller-runtime's logger, and so everything stsguard
// logs in the test process, into a new LogBuffer (CaptureLogs) and stores
// it in *logs, so that tests can check that no secret value is logged.
func WithLogs(logs **LogBuffer) Option {
	return func(*suite) error {
		*logs = CaptureLogs()
		return nil
	}
}

// WithoutLogs discards what is logged through controller-runtime's logger
// (envtest's own progress lines among it), for a package whose tests start
// their own control planes and read no log.
func WithoutLogs() Option {
	return func(*suite) error {
		ctrl.SetLogger(logr.Discard())
		return nil
	}
}

// WithControlPlane starts a control plane (Start: kube-apiserver and etcd
// with deploy/base's webhook configurations) for the package's tests,
// stores it in *cp, and stops it when they have run.
func WithControlPlane(cp **ControlPlane) Option {
	return func(s *suite) error {
		started, err := Start()
		if err != nil {
			return err
		}
		*cp, s.cp = started, started
		s.onStop("stopping the control plane", started.Stop)
		return nil
	}
}

// WithCluster starts the local cluster (StartCluster: the control plane
// with the controllers, the scheduler and a kwok node) for the package's
// tests, stores it in *cl, and stops it when they have run.
func WithCluster(cl **Cluster) Option {
	return func(s *suite) error {
		started, err := StartCluster()
		if err != nil {
			return err
		}
		*cl, s.cp = started, started.ControlPlane
		s.onStop("stopping the cluster", started.Stop)
		return nil
	}
}

// WithServer runs stsguard serve in the test process (ServeInProcess) on
// the control plane an earlier WithControlPlane or WithCluster started,
// stores it in *srv, and stops it before the control plane stops. Without
// such an option before it, Main fails.
func WithServer(srv **InProcess) Option {
	return func(s *suite) error {
		if s.cp == nil {
			return errors.New("harness.WithServer needs a control plane: put WithControlPlane or WithCluster before it")
		}
		started, err := ServeInProcess(s.cp)
		if err != nil {
			return err
		}
		*srv = started
		s.onStop("stsguard serve", started.Stop)
		return nil
	}
}
