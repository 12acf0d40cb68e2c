// Package background judges what already exists in the cluster, all the
// time: every StatefulSet, Service and Secret of the informer cache, as
// `stsguard audit --cluster` judges a live object (audit.Judge, at phase
// Validating: nothing is mutated or written), again when the object or one
// it depends on changes, and all of them on an interval. One replica at a
// time does it, elected on a Lease; it exports the findings as the
// stsguard_violations gauge and writes them as one policy report per
// namespace (package reports).
package background
