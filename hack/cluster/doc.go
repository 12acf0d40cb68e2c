// Command cluster starts the local cluster that the tests and the demo run
// on, for experiments by hand: kube-apiserver, etcd, kube-controller-manager,
// kube-scheduler and kwok (one simulated node) from bin/k8s, with `stsguard
// serve` registered through deploy/base's webhook configurations. It writes
// an admin kubeconfig, prints how to use it, and runs until interrupted
// (Ctrl-C or SIGTERM), when it stops everything it started.
//
// Usage: go run ./hack/cluster -stsguard bin/stsguard -kubeconfig-out bin/cluster/kubeconfig
package main
