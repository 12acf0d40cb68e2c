// Command bench-apiserver measures what stsguard adds to writes through the
// apiserver: it starts kube-apiserver and etcd as the tests do
// (harness.Start, with deploy/base's webhook configurations) and `stsguard
// serve` as a separate process (harness.ServeBinary), then times CREATE and
// a label-only UPDATE (a JSON merge patch, as kubectl label sends) of
// StatefulSets, Services and Secrets, with the webhooks (a namespace per
// kind; those of the Services and Secrets hold -neighbours StatefulSets,
// which the rules on those kinds read) and without them (kube-system, which
// the webhook configurations exclude by namespaceSelector), side by side in
// one run:
//
//   - p50 and p99 latency of -n writes, one at a time;
//   - throughput of -n writes by -workers concurrent clients;
//   - stsguard's CPU time (utime+stime of /proc/<pid>/stat) per
//     AdmissionReview it served (controller_runtime_webhook_requests_total on
//     its metrics port), and its RSS (/proc/<pid>/status).
//
// Each case's writes are split into -rounds rounds that alternate between
// the two sides, so that a shared machine's load drifts over both alike.
// The client has no client-side rate limit. With -profile FILE it then
// saves a CPU profile of stsguard (--pprof-bind-address) taken over
// -profile-seconds of concurrent writes through the webhooks. With
// -apiserver-profile FILE it saves CPU profiles of kube-apiserver (its
// /debug/pprof, on by default) under writes by -workers clients:
// label-only UPDATEs, which the webhooks' matchConditions keep away from
// stsguard, with the webhooks (FILE) and in kube-system (FILE.without),
// and CREATEs through the webhooks (FILE.create); see apiserver.go.
// -serve-flag passes a flag to stsguard serve (repeatable), for example
// -serve-flag=--enable-http2, and -serve-env an environment variable, for
// example -serve-env GOMAXPROCS=1 (what Go sets in a container with the
// chart's CPU limit of 1) or -serve-env GOGC=200.
//
// Every loop is bounded by a count and the whole run by -timeout; every
// address is loopback. It prints markdown tables with the ratio with/without
// and the targets. Not part of make test: run make
// bench-apiserver.
//
// Usage: go run ./hack/bench-apiserver -stsguard bin/stsguard [-n 1000] [-workers 8] [-profile cpu.pprof]
package main
