package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// File names in a certificate directory.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
	CAFile   = "ca.crt"
)

// DefaultValidity is how long a generated serving certificate is valid.
// The CA is valid for ten years (client-go's NewSelfSignedCACert).
const DefaultValidity = 365 * 24 * time.Hour

// Bundle is PEM-encoded TLS material.
type Bundle struct {
	// CACert is the CA certificate, for a webhook configuration's caBundle.
	CACert []byte
	// Cert is the serving certificate.
	Cert []byte
	// Key is the serving certificate's private key (PKCS#8 or SEC 1 PEM).
	Key []byte
}

// Generate returns a new self-signed CA and a serving certificate signed by
// it, valid from now for validity, for dnsNames (entries that parse as IP
// addresses become IP SANs). It returns an error when dnsNames is empty.
func Generate(dnsNames []string, validity time.Duration) (*Bundle, error) {
	if len(dnsNames) == 0 {
		return nil, errors.New("no DNS names for the serving certificate; pass at least one --dns-name (for example stsguard.stsguard-system.svc)")
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	caCert, err := cert.NewSelfSignedCACert(cert.Config{CommonName: "stsguard-ca", Organization: []string{"stsguard"}}, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating serving key: %w", err)
	}
	der, err := signServing(caCert, caKey, key.Public(), dnsNames, validity)
	if err != nil {
		return nil, err
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, fmt.Errorf("encoding serving key: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing serving certificate: %w", err)
	}
	caPEM, err := cert.EncodeCertificates(caCert)
	if err != nil {
		return nil, fmt.Errorf("encoding CA certificate: %w", err)
	}
	leafPEM, err := cert.EncodeCertificates(leaf)
	if err != nil {
		return nil, fmt.Errorf("encoding serving certificate: %w", err)
	}
	return &Bundle{CACert: caPEM, Cert: leafPEM, Key: keyPEM}, nil
}

func signServing(ca *x509.Certificate, caKey crypto.Signer, pub crypto.PublicKey, names []string, validity time.Duration) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0], Organization: []string{"stsguard"}},
		NotBefore:    now.Add(-5 * time.Minute).UTC(), // tolerate clock skew
		NotAfter:     now.Add(validity).UTC(),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		return nil, fmt.Errorf("signing serving certificate: %w", err)
	}
	return der, nil
}

// EnsureDir makes sure dir holds a serving certificate: when tls.crt or
// tls.key is missing it generates a bundle for dnsNames and writes tls.crt,
// tls.key (mode 0600) and ca.crt, creating dir if needed. It reports whether
// it generated one. Existing files are never overwritten; a directory with
// only one of the two files is an error, since a half-written pair would
// not load.
func EnsureDir(dir string, dnsNames []string) (bool, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	haveCert, haveKey := exists(certPath), exists(keyPath)
	switch {
	case haveCert && haveKey:
		return false, nil
	case haveCert != haveKey:
		return false, fmt.Errorf("%s holds only one of %s and %s; provide both or neither", dir, CertFile, KeyFile)
	}
	b, err := Generate(dnsNames, DefaultValidity)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("creating certificate directory: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{CAFile, b.CACert, 0o644}, {KeyFile, b.Key, 0o600}, {CertFile, b.Cert, 0o644}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return false, fmt.Errorf("writing %s: %w", f.name, err)
		}
	}
	return true, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
