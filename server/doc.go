// Package server runs `stsguard serve`: a controller-runtime manager whose
// webhook server answers the StatefulSet admission webhooks over HTTPS, with
// an informer cache for the objects the rules look up, health and readiness
// probes (ready once the cache has synced) and Prometheus /metrics.
package server
