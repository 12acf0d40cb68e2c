// Command bench-background measures the background audit of `stsguard
// serve` on the local cluster (without the StatefulSet controller, so that
// no pods run) holding N objects (bench/gen's StatefulSets,
// Services and Secrets, about 100 namespaces), created while stsguard is
// not running (failurePolicy Ignore admits them unchecked), with the
// PolicyReport CRD installed:
//
//   - the time from the start of `stsguard serve` to its first full report
//     (every namespace's PolicyReport written), and the scan's duration;
//   - the CPU time of that first report (utime+stime, from /proc);
//   - the memory the audit adds: RSS and Go heap in use after the first
//     report, against a run with --background-audit=false;
//   - the CPU time per change: K StatefulSets' pod templates changed, each
//     change re-judging the StatefulSet, its Service and its Secret, against
//     the same changes without the audit. The webhook configurations are
//     removed once the objects exist, so that stsguard's CPU is the
//     informer's and the audit's, not the reviews'.
//
// make bench-background runs it (not part of make test); docs/speed.md has
// a run.
package main
