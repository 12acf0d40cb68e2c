// Command gen writes a manifest of n objects for the audit benchmark: a
// StatefulSet, its headless Service and its Secret, repeated, in namespaces
// of 100 objects. Every third StatefulSet has a problem stsguard reports
// (no readinessProbe, a literal password, a ClusterIP Service).
//
// Usage: go run ./bench/gen -n 10000 > objects.yaml
package main
