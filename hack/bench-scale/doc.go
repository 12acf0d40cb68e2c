// Command bench-scale measures what stsguard costs as the cluster grows. It
// starts kube-apiserver and etcd as the tests do (harness.Start, with
// deploy/base's webhook configurations), creates -namespaces namespaces,
// and for each size N of -sizes fills the cluster up to N objects, a third
// each StatefulSets, headless Services and Secrets (one -secret-bytes value
// each), spread evenly over the namespaces. For each N it then starts
// `stsguard serve` as a separate process (harness.ServeBinary) and reports:
//
//   - time to ready: from starting the process to /readyz answering 200
//     (the informer caches of every kind the rules read listed and synced);
//   - RSS (VmRSS of /proc/<pid>/status) once ready, and after the writes
//     below, with the live heap after a forced GC (the heap profile's
//     ?gc=1 on --pprof-bind-address, then go_memstats_heap_inuse_bytes);
//   - -writes StatefulSet CREATEs, one at a time, through the apiserver and
//     stsguard's webhooks: p50 and p99 latency as the client sees it, and
//     stsguard's CPU time (utime+stime of /proc/<pid>/stat) per
//     AdmissionReview it served (controller_runtime_webhook_requests_total);
//   - `stsguard audit --cluster -o json`: wall time and peak RSS (the
//     child's rusage maxrss).
//
// Before the sizes it measures what one cached Secret costs: the live heap
// and RSS of a server started on the empty cluster and of one started after
// -probe-secrets Secrets of -secret-bytes were added, per Secret added (then
// deletes them); with -compare BIN also for another stsguard binary, such as
// one built from an older commit.
//
// No controller runs (there are no pods): stsguard caches no pod, so pods
// would not change what it costs. Every loop is bounded by a count and the
// whole run by -timeout; every address is loopback. It prints markdown
// tables and an ASCII chart of the costs against N. Not part of make test:
// run make bench-scale.
//
// Usage: go run ./hack/bench-scale -stsguard bin/stsguard [-sizes 1000,10000,50000] [-compare OLD]
package main
