// Package faults runs stsguard on the production path (the chart with two
// replicas, called by the apiserver through its Service) and counts what a
// rolling restart, an upgrade or a fault does to the writes that flow
// meanwhile. Its test runs in make test; hack/bench-faults prints the same
// scenarios as a table (make bench-faults).
package faults
