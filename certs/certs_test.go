package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	require.NotNil(t, block)
	c, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return c
}

func TestGenerate(t *testing.T) {
	b, err := Generate([]string{"stsguard.stsguard-system.svc", "127.0.0.1"}, time.Hour)
	require.NoError(t, err)
	ca, leaf := parseCert(t, b.CACert), parseCert(t, b.Cert)
	assert.True(t, ca.IsCA)
	assert.Equal(t, []string{"stsguard.stsguard-system.svc"}, leaf.DNSNames)
	require.Len(t, leaf.IPAddresses, 1)
	assert.True(t, leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")))
	assert.WithinDuration(t, time.Now().Add(time.Hour), leaf.NotAfter, time.Minute)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, name := range []string{"stsguard.stsguard-system.svc", "127.0.0.1"} {
		_, err = leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		assert.NoError(t, err, name)
	}
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: "other.svc", Roots: pool})
	assert.Error(t, err)
	_, err = tls.X509KeyPair(b.Cert, b.Key)
	assert.NoError(t, err, "certificate and key must pair")
}

func TestGenerateNeedsNames(t *testing.T) {
	_, err := Generate(nil, time.Hour)
	assert.ErrorContains(t, err, "--dns-name")
}

func TestEnsureDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	generated, err := EnsureDir(dir, []string{"localhost"})
	require.NoError(t, err)
	assert.True(t, generated)
	for _, f := range []string{CertFile, KeyFile, CAFile} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	info, err := os.Stat(filepath.Join(dir, KeyFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the key must not be world-readable")

	before, err := os.ReadFile(filepath.Join(dir, CertFile))
	require.NoError(t, err)
	generated, err = EnsureDir(dir, []string{"other"})
	require.NoError(t, err)
	assert.False(t, generated, "existing certificates are never replaced")
	after, err := os.ReadFile(filepath.Join(dir, CertFile))
	require.NoError(t, err)
	assert.Equal(t, before, after)

	require.NoError(t, os.Remove(filepath.Join(dir, KeyFile)))
	_, err = EnsureDir(dir, []string{"localhost"})
	assert.ErrorContains(t, err, "only one of")
}
