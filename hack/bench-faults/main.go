// Command bench-faults runs stsguard as a cluster runs it (the chart, two
// replicas behind its Service, the apiserver resolving the Service through
// its EndpointSlices) under a steady load of writes, through a sequence of
// faults (stsguard's rollouts, a hung replica, the apiserver restarted, etcd
// paused, the certificates rotated), and prints one Markdown table: per
// scenario the writes, those that failed, those admitted unjudged, those
// stsguard admitted with their literal password and a warning, those
// refused because a call failed, and how long each replica took to exit
// after SIGTERM. After each fault it checks that stsguard's decisions are
// right again. `make bench-faults` runs
// it; it needs root and ip(8) for its network namespaces.
//
// Usage:
//
//	bench-faults -stsguard bin/stsguard
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stsguard/stsguard/test/faults"
	"github.com/stsguard/stsguard/test/harness"
)

func main() {
	bin := flag.String("stsguard", "bin/stsguard", "the stsguard binary the current chart runs")
	flag.Parse()
	if err := run(*bin); err != nil {
		fmt.Fprintln(os.Stderr, "bench-faults:", err)
		os.Exit(1)
	}
}

func run(bin string) error {
	ctx := context.Background()
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	meta, err := harness.ReadChartMeta()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	images := map[string]string{harness.Image(meta.AppVersion): abs}
	tmp, err := os.MkdirTemp("", "bench-faults-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	prevCommit, prevMeta, hasPrevious := harness.PreviousRelease()
	var prevChart string
	if hasPrevious {
		logf("building the previous release, chart %s (stsguard %s) at %s", prevMeta.Version, prevMeta.AppVersion, prevCommit[:12])
		src, err := harness.CheckoutAt(prevCommit, tmp)
		if err != nil {
			return err
		}
		prevBin := filepath.Join(tmp, "stsguard-"+prevMeta.AppVersion)
		if err := harness.BuildAt(src, prevBin); err != nil {
			return err
		}
		images[harness.Image(prevMeta.AppVersion)] = prevBin
		prevChart = filepath.Join(src, "charts", "stsguard")
	}
	env, err := faults.Start(ctx, faults.Options{Images: images, Log: logf})
	if err != nil {
		return err
	}
	defer env.Stop()

	var results []faults.Result
	measure := func(name string, action func(context.Context) error) error {
		r, err := env.Measure(ctx, name, action)
		results = append(results, r)
		return err
	}
	values := faults.Values(nil)
	if hasPrevious {
		if err := env.Install(ctx, prevChart, values, false); err != nil {
			return err
		}
		name := fmt.Sprintf("upgrade from chart %s (stsguard %s, no drain) to %s", prevMeta.Version, prevMeta.AppVersion, meta.Version)
		if err := measure(name, func(ctx context.Context) error {
			if err := env.Install(ctx, harness.ChartDir(), values, true); err != nil {
				return err
			}
			return env.WaitPodsGone(ctx)
		}); err != nil {
			return err
		}
	} else if err := env.Install(ctx, harness.ChartDir(), values, false); err != nil {
		return err
	}
	steps := []struct {
		name   string
		values map[string]any // installed before the step, when not nil
		action func(context.Context) error
		// fault: after the step, check that stsguard's decisions are right
		// again (DecisionsRight).
		fault bool
	}{
		{"rolling restart", nil, env.RolloutRestart, false},
		{"rolling restart again", nil, env.RolloutRestart, false},
		{"rolling restart without the drain (shutdownDelay 0)", faults.Values(map[string]any{"shutdownDelay": "0"}), env.RolloutRestart, false},
		{"rolling restart without the preStop hook", faults.Values(map[string]any{"preStopSleepSeconds": 0}), env.RolloutRestart, false},
		{"rolling restart without either", faults.Values(map[string]any{"preStopSleepSeconds": 0, "shutdownDelay": "0"}), env.RolloutRestart, false},
		{"rolling restart, failurePolicy Fail on the validating webhooks", faults.FailValues(), env.RolloutRestart, false},
		{"a hung replica (SIGSTOP) until it leaves the endpoints", values, hang(env), true},
		{"etcd paused (SIGSTOP) for 5 s", nil, func(ctx context.Context) error { return env.PauseEtcd(ctx, 5*time.Second) }, true},
		{"CA and serving certificate rotated (Secret deleted) during a rolling restart", nil, env.RotateCertificates, true},
		// Last: the controllers' informers may lag for a minute after it.
		{"the apiserver restarted (SIGTERM, then the same certificates and port)", nil, restartAPIServer(env), true},
	}
	for _, s := range steps {
		if s.values != nil {
			if err := env.Install(ctx, harness.ChartDir(), s.values, true); err != nil {
				return err
			}
			if err := env.WaitPodsGone(ctx); err != nil {
				return err
			}
		}
		if err := measure(s.name, s.action); err != nil {
			return err
		}
		if s.fault {
			caught, err := env.DecisionsRight(ctx, 90*time.Second)
			if err != nil {
				return fmt.Errorf("after %s: %w", s.name, err)
			}
			logf("after %s: decisions right; the caches saw a new Service and StorageClass within %.1f s", s.name, caught.Seconds())
		}
	}
	fmt.Printf("\n%d writers, one write each %s (%d writes/s): a StatefulSet with a literal password, then a Secret; load from %s before to %s after each action.\n\n",
		faults.Writers, faults.Interval, int(float64(faults.Writers)/faults.Interval.Seconds()), faults.Lead, faults.Tail)
	return faults.PrintTable(os.Stdout, results)
}

// restartAPIServer is env.RestartAPIServer as a step's action (it logs
// how long the apiserver was away).
func restartAPIServer(env *faults.Env) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := env.RestartAPIServer(ctx)
		return err
	}
}

// hang stops one replica with SIGSTOP, waits until the EndpointSlice
// controller has taken it out of the Service, and resumes it.
func hang(env *faults.Env) func(context.Context) error {
	return func(ctx context.Context) error {
		pods, err := env.CS.CoreV1().Pods(faults.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) == 0 {
			return fmt.Errorf("no stsguard pod to hang: %v", err)
		}
		name := pods.Items[0].Name
		if err := env.Node.Signal(faults.Namespace, name, syscall.SIGSTOP); err != nil {
			return err
		}
		err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			n, err := env.ReadyEndpoints(ctx)
			return err == nil && n == 1, nil
		})
		if cerr := env.Node.Signal(faults.Namespace, name, syscall.SIGCONT); cerr != nil {
			return cerr
		}
		if err != nil {
			return err
		}
		return env.WaitServing(ctx)
	}
}
