// Package certs generates the TLS material a webhook server needs when no
// certificate manager provides it: a self-signed CA and an ECDSA P-256
// serving certificate signed by it, written as tls.crt, tls.key and ca.crt
// (the file names of a kubernetes.io/tls Secret plus its CA), so that
// controller-runtime's certwatcher can serve and hot-reload them and the CA
// can go into a webhook configuration's caBundle.
package certs
