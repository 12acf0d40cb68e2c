// Package promutil registers Prometheus collectors so that a component
// started twice in one process (tests, embedding) reuses its metrics instead
// of failing.
package promutil
