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

// File names in a certificate directory, and keys of the Secret that
// --manage-certs keeps (a kubernetes.io/tls Secret plus the CA).
const (
	CertFile  = "tls.crt"
	KeyFile   = "tls.key"
	CAFile    = "ca.crt"
	CAKeyFile = "ca.key"
)

// Default validities. The serving certificate is renewed when two thirds of
// its life have passed (after 60 of 90 days), the CA likewise (after 2 of 3
// years), so a renewal that fails has weeks of headroom.
const (
	DefaultValidity   = 90 * 24 * time.Hour
	DefaultCAValidity = 3 * 365 * 24 * time.Hour
)

// Bundle is PEM-encoded TLS material.
type Bundle struct {
	// CACert is the CA certificate, for a webhook configuration's caBundle.
	CACert []byte
	// Cert is the serving certificate.
	Cert []byte
	// Key is the serving certificate's private key (SEC 1 PEM).
	Key []byte
}

// CA is a certificate authority: a self-signed CA certificate and its key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// backdate is how far before now a certificate's NotBefore is put, so that
// an apiserver whose clock is a little behind accepts it: a tenth of the
// validity, at most five minutes.
func backdate(validity time.Duration) time.Duration {
	return min(5*time.Minute, validity/10)
}

// NewCA returns a new self-signed ECDSA P-256 CA, valid from now for
// validity. It returns an error when validity is not positive or key
// generation fails.
func NewCA(validity time.Duration) (*CA, error) {
	return newCA(time.Now(), validity)
}

func newCA(now time.Time, validity time.Duration) (*CA, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("CA validity must be positive, got %s", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "stsguard-ca-" + now.UTC().Format("20060102T150405Z"), Organization: []string{"stsguard"}},
		NotBefore:             now.Add(-backdate(validity)).UTC(),
		NotAfter:              now.Add(validity).UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing CA certificate: %w", err)
	}
	return &CA{Cert: c, Key: key}, nil
}

// CertPEM returns the CA certificate as PEM.
func (ca *CA) CertPEM() []byte {
	b, _ := cert.EncodeCertificates(ca.Cert) // encoding a parsed certificate cannot fail
	return b
}

// KeyPEM returns the CA key as PEM (SEC 1). It returns an error when the
// key cannot be marshalled.
func (ca *CA) KeyPEM() ([]byte, error) {
	return keyutil.MarshalPrivateKeyToPEM(ca.Key)
}

// Sign returns a new ECDSA P-256 serving certificate (server auth) and its
// key, as PEM, for names (entries that parse as IP addresses become IP
// SANs), valid from now for validity but never beyond the CA's own
// NotAfter. It returns an error when names is empty.
func (ca *CA) Sign(names []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	return ca.sign(time.Now(), names, validity)
}

func (ca *CA) sign(now time.Time, names []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(names) == 0 {
		return nil, nil, errors.New("no DNS names for the serving certificate; pass at least one --dns-name (for example stsguard.stsguard-system.svc)")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating serving key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0], Organization: []string{"stsguard"}},
		NotBefore:    now.Add(-backdate(validity)).UTC(),
		NotAfter:     now.Add(validity).UTC(),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing serving certificate: %w", err)
	}
	keyPEM, err = keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding serving key: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing serving certificate: %w", err)
	}
	certPEM, err = cert.EncodeCertificates(leaf)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding serving certificate: %w", err)
	}
	return certPEM, keyPEM, nil
}

func serialNumber() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return serial, nil
}

// Generate returns a new self-signed CA (valid DefaultCAValidity) and a
// serving certificate signed by it, valid from now for validity, for
// dnsNames (entries that parse as IP addresses become IP SANs). It returns
// an error when dnsNames is empty.
func Generate(dnsNames []string, validity time.Duration) (*Bundle, error) {
	if len(dnsNames) == 0 {
		return nil, errors.New("no DNS names for the serving certificate; pass at least one --dns-name (for example stsguard.stsguard-system.svc)")
	}
	ca, err := NewCA(max(DefaultCAValidity, validity))
	if err != nil {
		return nil, err
	}
	crt, key, err := ca.Sign(dnsNames, validity)
	if err != nil {
		return nil, err
	}
	return &Bundle{CACert: ca.CertPEM(), Cert: crt, Key: key}, nil
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
