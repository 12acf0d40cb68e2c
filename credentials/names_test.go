package credentials

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// nameCases are the env var names and Secret keys of the tests, the rule
// fixtures (test/testdata/rules) and the examples, and edge cases of each
// pattern's alternatives, with what each default pattern answers.
var nameCases = []struct {
	name                           string
	credential, isSwitch, password bool
}{
	// Names of the tests, fixtures and examples.
	{"MYSQL_ROOT_PASSWORD", true, false, true},
	{"MYSQL_PASSWORD", true, false, true},
	{"MARIADB_ROOT_PASSWORD", true, false, true},
	{"POSTGRES_PASSWORD", true, false, true},
	{"MINIO_ROOT_PASSWORD", true, false, true},
	{"DB_PASSWORD", true, false, true},
	{"APP_PASSWORD", true, false, true},
	{"X_PASSWORD", true, false, true},
	{"DB_PASSWD", true, false, true},
	{"RABBITMQ_DEFAULT_PASS", true, false, true},
	{"GPG_PASSPHRASE", true, false, true},
	{"LDAP_BIND_PWD", true, false, true},
	{"MINIO_SECRET_KEY", true, false, true},
	{"SECRET_KEY", true, false, true},
	{"DJANGO_SECRET_KEY", true, false, true},
	{"AWS_SECRET_ACCESS_KEY", true, false, true},
	{"MINIO_ACCESS_KEY", true, false, false},
	{"AWS_ACCESS_KEY", true, false, false},
	{"JWT_PRIVATE_KEY", true, false, false},
	{"GCP_CREDENTIALS", true, false, false},
	{"REGISTRY_CREDENTIAL", true, false, false},
	{"STRIPE_API_KEY", true, false, false},
	{"OPENAI_APIKEY", true, false, false},
	{"DATA_ENCRYPTION_KEY", true, false, false},
	{"SECRET_KEY_BASE", true, false, false},
	{"GITHUB_TOKEN", true, false, false},
	{"API_TOKEN", true, false, false},
	{"OPTIONAL_TOKEN", true, false, false},
	{"CLIENT_SECRET", true, false, false},
	{"Secret", true, false, false},
	{"MYSQL_ALLOW_EMPTY_PASSWORD", true, true, true},
	{"MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", true, true, true},
	{"MYSQL_RANDOM_ROOT_PASSWORD", true, true, true},
	{"MYSQL_ONETIME_PASSWORD", true, true, true},
	{"CORS_ALLOW_CREDENTIALS", true, true, false},
	{"USE_ACCESS_KEY", true, true, false},
	{"ENABLE_TOKEN", true, true, false},
	{"MYSQL_ROOT_PASSWORD_FILE", false, false, false},
	{"POSTGRES_PASSWORD_FILE", false, false, false},
	{"MINIO_SECRET_KEY_FILE", false, false, false},
	{"AWS_SHARED_CREDENTIALS_FILE", false, false, false},
	{"GOOGLE_APPLICATION_CREDENTIALS", true, true, false},
	{"KAFKA_SSL_KEYSTORE_CREDENTIALS", true, true, false},
	{"KAFKA_SSL_KEY_CREDENTIALS", true, true, false},
	{"KAFKA_SSL_TRUSTSTORE_CREDENTIALS", true, true, false},
	{"AWS_ACCESS_KEY_ID", false, false, false},
	{"SSH_PUBLIC_KEY", false, false, false},
	{"RABBITMQ_ROUTING_KEY", false, false, false},
	{"CACHE_KEY", false, false, false},
	{"PRIMARY_KEY", false, false, false},
	{"MAX_TOKENS", false, false, false},
	{"TOKEN_TTL", false, false, false},
	{"SECRETS_DIR", false, false, false},
	{"PWD", false, false, true},
	{"BYPASS", false, false, false},
	{"USERNAME", false, false, false},
	{"CASSANDRA_SEEDS", false, false, false},
	{"CASSANDRA_CLUSTER_NAME", false, false, false},
	{"POD_IP", false, false, false},
	{"password", true, false, true},
	{"Password", true, false, true},
	{"rootPassword", true, false, true},
	{"root-password", true, false, true},
	{"mysql-root-password", true, false, true},
	{"n0t-the-seed-password", true, false, true},
	{"db.pwd", false, false, true},
	{"pass", false, false, true},
	{"passphrase", true, false, true},
	{"secretkey", false, false, true},
	{"minio-secret-key", false, false, true},
	{"aws-secret-access-key", false, false, true},
	{"db-credentials", true, false, false},
	{"mysql-secret", true, false, false},
	{"alice-token", true, false, false},
	{"username", false, false, false},
	{"compass", false, false, false},
	{"legacy", false, false, false},
	{"ca.crt", false, false, false},
	{"tls.crt", false, false, false},
	// Edge cases.
	{"", false, false, false},
	{"_", false, false, false},
	{"PASS", false, false, true},
	{"_PASS", true, false, true},
	{"x.pass", false, false, true},
	{"x-Pwd", false, false, true},
	{"xpwd", false, false, false},
	{"PASSWORDS", false, false, false},
	{"PASSWORD_", false, false, false},
	{"passWD", true, false, true},
	{"secret_key", true, false, true},
	{"secret.key", false, false, true},
	{"secret-key", false, false, true},
	{"secret__key", false, false, false},
	{"secret_.key", false, false, false},
	{"_secret_key", true, false, true},
	{"key", false, false, false},
	{"accesskey", false, false, false},
	{"secretaccesskey", false, false, true},
	{"SECRET-ACCESSKEY", false, false, true},
	{"secret.access_key", true, false, true},
	{"secret_access__key", false, false, false},
	{"secret__access_key", true, false, false},
	{"secret_accesskey", false, false, true},
	{"APIKEY", true, false, false},
	{"API__KEY", false, false, false},
	{"credential", true, false, false},
	{"CREDENTIALSS", false, false, false},
	{"USE", false, false, false},
	{"USE_", false, true, false},
	{"_USE_", false, true, false},
	{"XUSE_PASSWORD", true, false, true},
	{"X_USE_PASSWORD", true, true, true},
	{"ALLOW", false, false, false},
	{"ALLOW_EMPTY", false, true, false},
	{"a__allow_x", false, true, false},
	{"SKIP_", false, true, false},
	{"Generate_Password", true, true, true},
	{"DISABLEX_PASSWORD", true, false, true},
	{"X_GOOGLE_APPLICATION_CREDENTIALS", true, false, false},
	{"GOOGLE_APPLICATION_CREDENTIALS_", false, false, false},
	{"KEYSTORE_CREDENTIALS", true, true, false},
	{"XSSL_KEY_CREDENTIALS", true, true, false},
	{"SSL_KEY_CREDENTIAL", true, false, false},
	// Outside ASCII: (?i) folds ſ (U+017F) to s and the Kelvin sign
	// (U+212A) to k; the regexps answer these.
	{"ſecret_key", true, false, true},
	{"SECRET_\u212aEY", true, false, true},
	{"DB_PAſſWORD", true, false, true},
	{"\u212aEYSTORE_CREDENTIALS", true, true, false},
	{"ſ\u212aip_PASSWORD", true, true, true},
	{"\xffpass", false, false, false},
	{"\xff_pass", true, false, true},
	{"pässword", false, false, false},
}

// TestDefaultNamePatterns: the default patterns give each name's expected
// answer, through the regexps and through Config (asked twice: the second
// answer comes from the Config's memory).
func TestDefaultNamePatterns(t *testing.T) {
	c := Default()
	patterns := []string{DefaultCredentialEnvPattern, DefaultCredentialSwitchPattern, DefaultPasswordNamePattern}
	for _, tc := range nameCases {
		t.Run(tc.name, func(t *testing.T) {
			want := []bool{tc.credential, tc.isSwitch, tc.password}
			for i, p := range patterns {
				assert.Equal(t, want[i], regexp.MustCompile(p).MatchString(tc.name), p)
			}
			for range 2 {
				assert.Equal(t, tc.credential && !tc.isSwitch, c.IsCredentialEnv(tc.name), "IsCredentialEnv")
				assert.Equal(t, tc.password && !tc.isSwitch, c.IsPasswordName(tc.name, nil), "IsPasswordName")
			}
		})
	}
}

// A nameMemo answers as the regexp it is given, whatever it remembers: the
// same name asked of two patterns, a name too long to remember, more names
// than it remembers, and no memo at all.
func TestMatchNameAnswersAsTheRegexp(t *testing.T) {
	password, token := regexp.MustCompile(`(?i)password$`), regexp.MustCompile(`(?i)token$`)
	long := strings.Repeat("x", maxCachedNameLength) + "_PASSWORD"
	cases := []struct {
		re   *regexp.Regexp
		name string
		want bool
	}{
		{password, "DB_PASSWORD", true},
		{token, "DB_PASSWORD", false},
		{token, "API_TOKEN", true},
		{password, "API_TOKEN", false},
		{password, long, true},
		{token, long, false},
	}
	m := newNameMemo()
	for _, memo := range []*nameMemo{m, m, nil} {
		for _, tc := range cases {
			assert.Equal(t, tc.want, memo.match(tc.re, tc.name), "%s on %.20q", tc.re, tc.name)
		}
	}
	for i := range 2 * nameMatchCacheSize {
		name := fmt.Sprintf("N%d_PASSWORD", i)
		assert.True(t, m.match(password, name), name)
		assert.False(t, m.match(token, name), name)
	}
	assert.Equal(t, nameMatchCacheSize, m.answers.Len(), "full, and no larger")
	_, kept := m.answers.Get(nameMatchKey{password, "DB_PASSWORD"})
	assert.False(t, kept, "the oldest answers were evicted")
	assert.True(t, m.match(password, "DB_PASSWORD"), "asked again once evicted")
}

// TestPolicyNamePatterns: a policy's own patterns are asked as regexps,
// and a profile's PasswordEnv counts unless it is a switch.
func TestPolicyNamePatterns(t *testing.T) {
	c := Default()
	c.PasswordName = regexp.MustCompile(`(?i)_cred$`)
	c.CredentialEnv = regexp.MustCompile(`(?i)^MY_`)
	cases := []struct {
		name                 string
		profile              *ImageProfile
		credential, password bool
	}{
		{"ROOT_CRED", nil, false, true},
		{"MYSQL_PASSWORD", nil, false, false},
		{"MY_PASSWORD", nil, true, false},
		{"MY_ALLOW_CRED", nil, false, false}, // a switch
		{"ROOT_PW", &ImageProfile{PasswordEnv: []string{"ROOT_PW"}}, false, true},
		{"USE_ROOT_PW", &ImageProfile{PasswordEnv: []string{"USE_ROOT_PW"}}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.credential, c.IsCredentialEnv(tc.name), "IsCredentialEnv")
			assert.Equal(t, tc.password, c.IsPasswordName(tc.name, tc.profile), "IsPasswordName")
		})
	}
}
