// Package certs provides the TLS material stsguard serves with when no
// certificate manager provides it.
//
//   - Generate and EnsureDir: a self-signed CA and an ECDSA P-256 serving
//     certificate signed by it, written as tls.crt, tls.key and ca.crt (the
//     file names of a kubernetes.io/tls Secret plus its CA), for
//     controller-runtime's certwatcher to serve and hot-reload.
//   - Manager (stsguard serve --manage-certs): the CA and serving
//     certificate kept in a Secret shared by every replica, the CA injected
//     into the caBundle of stsguard's webhook configurations, both rotated
//     at two thirds of their life in an order that never hands an apiserver
//     a certificate it cannot verify.
//   - Metrics: certificate expiry and reconcile errors.
package certs
