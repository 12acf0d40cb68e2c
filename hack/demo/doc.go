// Command demo shows stsguard as a kubectl user sees it, on a local cluster
// whose pods run: kube-apiserver, etcd, kube-controller-manager,
// kube-scheduler and kwok (one simulated node) from bin/k8s, with `stsguard
// serve` registered through the webhook configurations of deploy/base. It
// prints a transcript: each command as a user would type it, on a line of
// its own starting with "$ ", then what kubectl (or stsguard) printed,
// unchanged. It applies every directory of examples/, shows the pods running
// and the moved password, a canary rollout, kubectl scale, a storage resize
// denied with its plan and then done with `stsguard expand`, and ends with
// `stsguard audit --cluster`.
//
// It checks every outcome it shows, and exits non-zero when one is missing:
// with failurePolicy Ignore, a webhook that is down would otherwise look
// like a webhook that found nothing.
//
// Usage: go run ./hack/demo -stsguard bin/stsguard
package main
