// Package e2e tests stsguard on a cluster that answers back: the real
// kube-apiserver, kube-controller-manager (StatefulSet controller, garbage
// collector, PV binder, ...) and kube-scheduler, kwok playing the kubelet of
// a simulated node and a CSI driver's provisioner and resizer, and the real
// kubectl, with `stsguard serve` running in-process behind the webhook
// configurations of deploy/base. What depends on a controller or on what
// kubectl sends is tested here; test/integration keeps what needs only the
// apiserver.
package e2e
