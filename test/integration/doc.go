// Package integration tests stsguard end to end: a real kube-apiserver and
// etcd (envtest), the webhook configurations rendered from deploy/base, and
// `stsguard serve` running in-process, exercised through real clients.
package integration
