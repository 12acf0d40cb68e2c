// Package harness starts a real control plane for stsguard's integration
// tests and demo: controller-runtime's envtest runs kube-apiserver and etcd
// (built from Go modules into bin/k8s by `make envtest-assets`) with the
// webhook configurations of deploy/base (rendered with kubectl kustomize)
// installed as they are, so the configuration that is tested is the one
// that is shipped. Main is the TestMain of the test packages: its options
// start what a package's tests share (WithControlPlane or WithCluster,
// WithServer) and stop it afterwards. Web and Testdata read the fixtures
// the packages share from test/testdata.
package harness
