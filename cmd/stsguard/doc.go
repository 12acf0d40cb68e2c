// Command stsguard is the StatefulSet admission webhook and its tools: serve
// (the webhook server), audit (replay manifests or judge a live cluster with
// the same engine), expand (grow the PVCs of a StatefulSet and re-create it
// without restarting its pods), rules (the catalog) and version. Built as
// kubectl-stsguard, it is the kubectl plugin with kubectl's own flags.
package main
