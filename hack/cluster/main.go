package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/stsguard/stsguard/test/harness"
)

func main() {
	bin := flag.String("stsguard", "bin/stsguard", "the stsguard binary to serve the webhooks with")
	kubeconfig := flag.String("kubeconfig-out", "bin/cluster/kubeconfig", "where to write the admin kubeconfig")
	flag.Parse()
	if err := run(*bin, *kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func run(bin, kubeconfig string) error {
	start := time.Now()
	cl, err := harness.StartCluster()
	if err != nil {
		return err
	}
	defer cl.Stop()
	kubeconfig, err = filepath.Abs(kubeconfig)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(kubeconfig), 0o755); err != nil {
		return err
	}
	if err := cl.WriteKubeconfig(kubeconfig); err != nil {
		return err
	}
	logPath := filepath.Join(filepath.Dir(kubeconfig), "stsguard.log")
	s, err := harness.ServeBinary(cl.ControlPlane, bin, kubeconfig, logPath)
	if err != nil {
		return err
	}
	defer s.Stop()
	kubectl, _ := harness.Kubectl()
	fmt.Printf(`cluster up in %s: kube-apiserver, etcd, kube-controller-manager, kube-scheduler,
kwok (node %s, simulated: pods run without containers), stsguard serve (log: %s)
component logs: %s

In another shell:
  export KUBECONFIG=%s
  alias kubectl=%s
  kubectl get nodes

Press Ctrl-C to stop the cluster.
`, time.Since(start).Round(100*time.Millisecond), harness.NodeName, logPath, cl.Dir, kubeconfig, kubectl)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-sig:
			fmt.Println("stopping the cluster")
			return nil
		case <-tick.C:
			if err := s.Exited(); err != nil {
				return fmt.Errorf("%w (log: %s)", err, logPath)
			}
		}
	}
}
