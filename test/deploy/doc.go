// Package deploy tests what deploy/ installs: the manifests rendered by
// `kubectl kustomize` for every overlay, applied to a real kube-apiserver
// (envtest), stsguard running under the rendered ServiceAccount and RBAC,
// the self-managed certificate flow, and a down backend.
package deploy
