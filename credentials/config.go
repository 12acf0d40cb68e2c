package credentials

import (
	"regexp"
	"slices"
	"strings"
)

// EnvCondition matches an environment variable set on a container. An empty
// Value matches any non-empty value.
type EnvCondition struct {
	Name  string
	Value string
}

// ImageProfile is what stsguard knows about one database or quorum image.
type ImageProfile struct {
	// Name identifies the profile in messages ("mysql").
	Name string
	// Images are the image repository base names it matches: the last path
	// element without tag or digest ("mysql" matches docker.io/library/mysql:8.0
	// and bitnami/mysql@sha256:...).
	Images []string
	// TerminationGracePeriodSeconds is the grace period, in seconds, the
	// database needs to flush and leave its cluster cleanly; 0 for no opinion.
	TerminationGracePeriodSeconds int64
	// PasswordEnv are the env vars of the image that hold passwords; the
	// first is the one the image needs when PasswordRequired.
	PasswordEnv []string
	// PasswordRequired is true when the image cannot start without
	// PasswordEnv[0]; password-secret-ref then generates one.
	PasswordRequired bool
	// PasswordOptionalWhen lists env settings under which PasswordEnv[0] may
	// be absent (MYSQL_ALLOW_EMPTY_PASSWORD, POSTGRES_HOST_AUTH_METHOD=trust,
	// ...). PasswordEnv[0]+"_FILE" always counts as providing the password.
	PasswordOptionalWhen []EnvCondition
}

// Config is what stsguard knows about database images and credentials:
// the image profiles, the name patterns of env vars and Secret keys that
// hold credentials, and the well-known weak passwords. Default returns the
// built-in table; a policy file changes it (package policy). A Config is
// read-only once built and safe for concurrent use; its copies share the
// memory of the patterns' answers.
type Config struct {
	// Profiles are matched in order; the first profile naming a container's
	// image applies to it.
	Profiles []ImageProfile
	// CredentialEnv matches env var names that hold a credential.
	CredentialEnv *regexp.Regexp
	// CredentialSwitch matches env var names that CredentialEnv matches but
	// that are switches, not credentials (MYSQL_ALLOW_EMPTY_PASSWORD).
	CredentialSwitch *regexp.Regexp
	// PasswordName matches env var names and Secret keys that hold a
	// password (weak-password); profile PasswordEnv names always count.
	PasswordName *regexp.Regexp
	// WeakPasswords are well-known default passwords, compared without case
	// and surrounding white space. An empty password is always weak.
	WeakPasswords []string

	// names remembers the patterns' answers (see nameMemo); nil in a
	// Config not built by Default, which then asks the regexps every time.
	names *nameMemo
}

// defaultWeakPasswords are the well-known defaults weak-password rejects: the
// "password" of the seed documents and tutorials, the "example" of the
// official images' compose examples, vendor and image defaults (guest,
// neo4j, bitnami, minioadmin, ...) and the most common leaked passwords.
var defaultWeakPasswords = []string{
	"password", "passw0rd", "p@ssw0rd", "password1", "pass", "changeme", "change-me", "changeit",
	"secret", "root", "toor", "admin", "administrator", "default", "test", "guest", "letmein",
	"qwerty", "123456", "1234567", "12345678", "123456789", "1234567890",
	"mysql", "postgres", "cassandra", "mongo", "redis", "rabbitmq", "elastic",
	"mariadb", "mongodb", "postgresql", "oracle", "neo4j", "bitnami", "example", "admin123", "password123",
	// MinIO's default root credentials (minioadmin) and the access and
	// secret key of its older documentation and of the manifests that copy
	// it (minio, minio123).
	"minio", "minio123", "minioadmin",
}

// GeneratedPasswordLength is the length, in characters, of a password that
// stsguard generates for an image that cannot start without one.
const GeneratedPasswordLength = 32

// Default returns the built-in profiles and credential patterns:
// cassandra 300 s as the seed documents advise; mysql, mariadb, postgres,
// mongo and elasticsearch 120 s; kafka, zookeeper, rabbitmq and redis 60 s.
func Default() Config {
	mysqlOptional := []EnvCondition{{Name: "MYSQL_ALLOW_EMPTY_PASSWORD"}, {Name: "MYSQL_RANDOM_ROOT_PASSWORD"}}
	return Config{
		Profiles: []ImageProfile{
			{Name: "cassandra", Images: []string{"cassandra"}, TerminationGracePeriodSeconds: 300,
				PasswordEnv: []string{"CASSANDRA_PASSWORD"}},
			{Name: "mysql", Images: []string{"mysql", "mysql-server", "percona-server", "percona"}, TerminationGracePeriodSeconds: 120,
				PasswordEnv: []string{"MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD"}, PasswordRequired: true, PasswordOptionalWhen: mysqlOptional},
			{Name: "mariadb", Images: []string{"mariadb"}, TerminationGracePeriodSeconds: 120,
				PasswordEnv: []string{"MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD", "MARIADB_ROOT_PASSWORD", "MARIADB_PASSWORD"}, PasswordRequired: true,
				PasswordOptionalWhen: append([]EnvCondition{
					{Name: "MARIADB_ROOT_PASSWORD"}, {Name: "MARIADB_ROOT_PASSWORD_FILE"},
					{Name: "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD"}, {Name: "MARIADB_RANDOM_ROOT_PASSWORD"},
				}, mysqlOptional...)},
			{Name: "postgres", Images: []string{"postgres", "postgresql", "postgis"}, TerminationGracePeriodSeconds: 120,
				PasswordEnv: []string{"POSTGRES_PASSWORD"}, PasswordRequired: true,
				PasswordOptionalWhen: []EnvCondition{{Name: "POSTGRES_HOST_AUTH_METHOD", Value: "trust"}}},
			{Name: "mongo", Images: []string{"mongo", "mongodb"}, TerminationGracePeriodSeconds: 120,
				PasswordEnv: []string{"MONGO_INITDB_ROOT_PASSWORD"}},
			{Name: "elasticsearch", Images: []string{"elasticsearch"}, TerminationGracePeriodSeconds: 120,
				PasswordEnv: []string{"ELASTIC_PASSWORD"}},
			{Name: "kafka", Images: []string{"kafka", "cp-kafka"}, TerminationGracePeriodSeconds: 60},
			{Name: "zookeeper", Images: []string{"zookeeper", "cp-zookeeper"}, TerminationGracePeriodSeconds: 60},
			{Name: "rabbitmq", Images: []string{"rabbitmq"}, TerminationGracePeriodSeconds: 60,
				PasswordEnv: []string{"RABBITMQ_DEFAULT_PASS"}},
			{Name: "redis", Images: []string{"redis", "redis-cluster"}, TerminationGracePeriodSeconds: 60,
				PasswordEnv: []string{"REDIS_PASSWORD"}},
		},
		CredentialEnv:    regexp.MustCompile(DefaultCredentialEnvPattern),
		CredentialSwitch: regexp.MustCompile(DefaultCredentialSwitchPattern),
		PasswordName:     regexp.MustCompile(DefaultPasswordNamePattern),
		WeakPasswords:    slices.Clone(defaultWeakPasswords),
		names:            newNameMemo(),
	}
}

// Default name patterns (Go regexp syntax).
//
// Credential names (moved into a Secret) and password names (also judged
// against the weak-password list) differ on purpose. A password, and a
// secret key that a user picks like one (MINIO_SECRET_KEY, Django's
// SECRET_KEY, AWS_SECRET_ACCESS_KEY given to a MinIO client), is guessable
// when it is a default such as minio123, and empty means no password. An
// access key, private key, API key, token or credentials blob is issued or
// generated, never on a list of defaults, and empty usually means "not
// configured" (AWS_ACCESS_KEY: "" with IAM roles): it is moved into a
// Secret when it holds a literal, but weak-password stays out of it.
const (
	// DefaultCredentialEnvPattern matches env var names that hold
	// credentials: passwords (…PASSWORD, …PASSWD, …PASSPHRASE, …_PASS,
	// …_PWD), secrets and tokens (…SECRET, …TOKEN), keys (…SECRET_KEY,
	// …ACCESS_KEY, …PRIVATE_KEY, …API_KEY, …APIKEY, …ENCRYPTION_KEY,
	// …SIGNING_KEY, …MASTER_KEY, SECRET_KEY_BASE) and …CREDENTIAL(S).
	DefaultCredentialEnvPattern = `(?i)(PASSWORD|PASSWD|PASSPHRASE|_PASS|_PWD|SECRET|TOKEN|SECRET_KEY|ACCESS_KEY|PRIVATE_KEY|API_?KEY|ENCRYPTION_KEY|SIGNING_KEY|MASTER_KEY|SECRET_KEY_BASE|CREDENTIALS?)$`
	// DefaultCredentialSwitchPattern matches names that the credential
	// patterns match but that hold no credential: switches
	// (MYSQL_ALLOW_EMPTY_PASSWORD, MYSQL_RANDOM_ROOT_PASSWORD,
	// CORS_ALLOW_CREDENTIALS, ...) and names whose value is a file
	// (GOOGLE_APPLICATION_CREDENTIALS, the KAFKA_SSL_*_CREDENTIALS of the
	// Confluent images). Names ending in _FILE never match the credential
	// patterns in the first place.
	DefaultCredentialSwitchPattern = `(?i)((^|_)(ALLOW|ALLOW_EMPTY|RANDOM|ONETIME|GENERATE|SKIP|DISABLE|ENABLE|REQUIRE|USE)_|^GOOGLE_APPLICATION_CREDENTIALS$|(KEYSTORE|TRUSTSTORE|SSL_KEY)_CREDENTIALS$)`
	// DefaultPasswordNamePattern matches env var names and Secret keys that
	// hold a password: PASSWORD, rootPassword, mysql-root-password, PASSWD,
	// RABBITMQ_DEFAULT_PASS, db.pwd, and secret keys chosen like passwords:
	// MINIO_SECRET_KEY, secretkey, secretKey, AWS_SECRET_ACCESS_KEY.
	DefaultPasswordNamePattern = `(?i)(passw(or)?d|passphrase|(^|[_.-])(pass|pwd)|secret[_.-]?key|secret[_.-]?access[_.-]?key)$`
)

// imageName returns the repository base name of an image reference:
// "registry:5000/team/mysql:8.0@sha256:..." gives "mysql".
func imageName(image string) string {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndexByte(image, '/'); i >= 0 {
		image = image[i+1:]
	}
	if i := strings.IndexByte(image, ':'); i >= 0 {
		image = image[:i]
	}
	return strings.ToLower(image)
}

// Profile returns the profile for image, or nil when none matches.
func (c *Config) Profile(image string) *ImageProfile {
	name := imageName(image)
	for i := range c.Profiles {
		for _, n := range c.Profiles[i].Images {
			if n == name {
				return &c.Profiles[i]
			}
		}
	}
	return nil
}

// IsCredentialEnv reports whether an env var named name holds a credential:
// it matches CredentialEnv and not CredentialSwitch.
func (c *Config) IsCredentialEnv(name string) bool {
	return c.names.match(c.CredentialEnv, name) &&
		!c.isCredentialSwitch(name)
}

// IsPasswordName reports whether an env var or Secret key named name holds a
// password: it matches PasswordName or is a PasswordEnv of profile p (which
// may be nil), and is not a switch.
func (c *Config) IsPasswordName(name string, p *ImageProfile) bool {
	if !(p != nil && slices.Contains(p.PasswordEnv, name)) &&
		!c.names.match(c.PasswordName, name) {
		return false
	}
	return !c.isCredentialSwitch(name)
}

// isCredentialSwitch reports whether name matches CredentialSwitch.
func (c *Config) isCredentialSwitch(name string) bool {
	return c.names.match(c.CredentialSwitch, name)
}

// IsWeakPassword reports whether value is empty or one of WeakPasswords,
// ignoring case and surrounding white space (a trailing newline from
// "echo password > file" included).
func (c *Config) IsWeakPassword(value []byte) bool {
	v := strings.TrimSpace(string(value))
	if v == "" {
		return true
	}
	for _, w := range c.WeakPasswords {
		if strings.EqualFold(v, w) {
			return true
		}
	}
	return false
}
