// Package harness starts a real control plane for stsguard's integration
// tests and demo: controller-runtime's envtest runs kube-apiserver and etcd
// (built from Go modules into bin/k8s by `make envtest-assets`) with the
// webhook configurations of deploy/base (rendered with kubectl kustomize) installed as they are, so
// the configuration that is tested is the one that is shipped.
package harness
