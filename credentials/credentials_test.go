package credentials

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestCredentialNames pins which env var names the credential rules
// recognise: credential names are moved into a Secret by
// password-secret-ref; password names (a subset) are also judged by
// weak-password. Switches and file pointers are neither.
func TestCredentialNames(t *testing.T) {
	cases := []struct {
		name       string
		credential bool // IsCredentialEnv: moved by password-secret-ref
		password   bool // IsPasswordName: judged by weak-password
	}{
		// Passwords, as before.
		{"MYSQL_ROOT_PASSWORD", true, true},
		{"DB_PASSWD", true, true},
		{"RABBITMQ_DEFAULT_PASS", true, true},
		{"GPG_PASSPHRASE", true, true},
		{"LDAP_BIND_PWD", true, true},
		// Keys a user chooses like a password: judged against the weak list.
		{"MINIO_SECRET_KEY", true, true},
		{"SECRET_KEY", true, true},
		{"DJANGO_SECRET_KEY", true, true},
		{"AWS_SECRET_ACCESS_KEY", true, true},
		// Credentials that are issued or generated, not chosen: moved, but
		// an empty one often means "not configured", so weak-password stays
		// out of it.
		{"MINIO_ACCESS_KEY", true, false},
		{"JWT_PRIVATE_KEY", true, false},
		{"GCP_CREDENTIALS", true, false},
		{"REGISTRY_CREDENTIAL", true, false},
		{"STRIPE_API_KEY", true, false},
		{"OPENAI_APIKEY", true, false},
		{"DATA_ENCRYPTION_KEY", true, false},
		{"SECRET_KEY_BASE", true, false},
		{"GITHUB_TOKEN", true, false},
		{"CLIENT_SECRET", true, false},
		// Switches.
		{"MYSQL_ALLOW_EMPTY_PASSWORD", false, false},
		{"MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", false, false},
		{"MYSQL_RANDOM_ROOT_PASSWORD", false, false},
		{"MYSQL_ONETIME_PASSWORD", false, false},
		{"CORS_ALLOW_CREDENTIALS", false, false},
		{"USE_ACCESS_KEY", false, false},
		{"ENABLE_TOKEN", false, false},
		// File pointers: the value is a path or a file name, not a credential.
		{"MYSQL_ROOT_PASSWORD_FILE", false, false},
		{"MINIO_SECRET_KEY_FILE", false, false},
		{"AWS_SHARED_CREDENTIALS_FILE", false, false},
		{"GOOGLE_APPLICATION_CREDENTIALS", false, false},
		{"KAFKA_SSL_KEYSTORE_CREDENTIALS", false, false},
		{"KAFKA_SSL_KEY_CREDENTIALS", false, false},
		{"KAFKA_SSL_TRUSTSTORE_CREDENTIALS", false, false},
		// Not credentials at all.
		{"AWS_ACCESS_KEY_ID", false, false},
		{"SSH_PUBLIC_KEY", false, false},
		{"RABBITMQ_ROUTING_KEY", false, false},
		{"CACHE_KEY", false, false},
		{"PRIMARY_KEY", false, false},
		{"MAX_TOKENS", false, false},
		{"TOKEN_TTL", false, false},
		{"SECRETS_DIR", false, false},
		{"PWD", false, true}, // the shell's working directory; a bare pwd Secret key is a password
		{"BYPASS", false, false},
		{"USERNAME", false, false},
	}
	c := Default()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.credential, c.IsCredentialEnv(tc.name), "IsCredentialEnv")
			assert.Equal(t, tc.password, c.IsPasswordName(tc.name, nil), "IsPasswordName")
			if tc.password && tc.name != "PWD" {
				assert.True(t, tc.credential, "every password name is a credential name")
			}
		})
	}
}

// TestWellKnownImageDefaultsAreWeak: the defaults of common images that
// public manifests copy.
func TestWellKnownImageDefaultsAreWeak(t *testing.T) {
	c := Default()
	for _, v := range []string{"minio123", "minioadmin", "MinioAdmin", "minio", "neo4j", "example", "bitnami", "mariadb", "mongodb", "postgresql", "admin123", "password123", "oracle"} {
		assert.True(t, c.IsWeakPassword([]byte(v)), "%q", v)
	}
	for _, v := range []string{"minio-7Qx2-prod", "example.com-Zk9"} {
		assert.False(t, c.IsWeakPassword([]byte(v)), "%q", v)
	}
}

// TestWeakPasswordMatching: weak passwords compare without case and
// surrounding white space; password names are the pattern's and a
// profile's PasswordEnv.
func TestWeakPasswordMatching(t *testing.T) {
	c := Default()
	for _, v := range []string{"", " ", "password", "Password", "password\n", "changeme", "ROOT", "123456", "cassandra"} {
		assert.True(t, c.IsWeakPassword([]byte(v)), "%q", v)
	}
	for _, v := range []string{"c0rrect-h0rse-battery", "password-2026-xyz"} {
		assert.False(t, c.IsWeakPassword([]byte(v)), "%q", v)
	}
	for _, n := range []string{"password", "rootPassword", "mysql-root-password", "DB_PASSWD", "RABBITMQ_DEFAULT_PASS", "db.pwd", "passphrase"} {
		assert.True(t, c.IsPasswordName(n, nil), n)
	}
	for _, n := range []string{"username", "bypass", "compass", "MYSQL_ALLOW_EMPTY_PASSWORD", "tls.crt", "API_TOKEN"} {
		assert.False(t, c.IsPasswordName(n, nil), n)
	}
	assert.True(t, c.IsPasswordName("CUSTOM_ROOT_CRED", &ImageProfile{PasswordEnv: []string{"CUSTOM_ROOT_CRED"}}))
}
