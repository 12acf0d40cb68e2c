// Command bench-peers puts stsguard side by side with its peers on one local
// apiserver, in one run, with the same writes: no webhook at all; a no-op
// webhook (./noop: controller-runtime's admission.Webhook answering allowed
// on every path stsguard registers), the floor of what a webhook costs;
// stsguard (`stsguard serve`, as make bench-apiserver runs it); and Kyverno's
// admission controller, run out of cluster with the CEL policies of
// bench/peers/kyverno (built into bin/peers by hack/peers/build.sh; left out,
// saying so, when its binary is missing).
//
// Each side has a namespace of its own, labelled
// bench.stsguard.io/webhook=<side>, and each webhook's namespaceSelector
// selects only its side's namespace, so every write goes through exactly one
// webhook (or none). It measures, per side:
//
//   - StatefulSet CREATE: p50 and p99 client-side latency of -n writes, one
//     at a time; "added" is the side's figure minus that of no webhook;
//   - Secret CREATE: throughput of -n writes by -workers clients;
//   - the webhook process's CPU time (utime+stime, /proc/<pid>/stat) per
//     write over each case's writes, and its RSS (VmRSS, VmHWM).
//
// Each case is split into -rounds rounds; each round visits the sides in a
// rotated order, so that a shared machine's load drifts over all of them
// alike. With -decisions DIR it then writes the decisions table (see
// decisions.go) of every examples/ case and every rule fixture case through
// Kyverno's policies (live, on the same apiserver), stsguard and kube-score
// into DIR. It prints markdown tables. Not part of make test: run make
// bench-peers.
//
// Usage: go run ./hack/bench-peers -stsguard bin/stsguard -noop bin/peers/noop-webhook [-kyverno bin/peers/kyverno] [-n 500] [-decisions DIR]
package main
