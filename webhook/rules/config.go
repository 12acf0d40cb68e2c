package rules

import (
	"crypto/rand"
	"io"
	"regexp"
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
	// PasswordEnv is the env var the image cannot start without ("" for none).
	PasswordEnv string
	// PasswordOptionalWhen lists env settings under which PasswordEnv may be
	// absent (MYSQL_ALLOW_EMPTY_PASSWORD, POSTGRES_HOST_AUTH_METHOD=trust, ...).
	// PasswordEnv+"_FILE" always counts as providing the password.
	PasswordOptionalWhen []EnvCondition
}

// Config is the engine's tunable knowledge. DefaultConfig returns today's
// built-in table.
type Config struct {
	// Profiles are matched in order; the first profile naming a container's
	// image applies to it.
	Profiles []ImageProfile
	// CredentialEnv matches env var names that hold a credential.
	CredentialEnv *regexp.Regexp
	// CredentialSwitch matches env var names that CredentialEnv matches but
	// that are switches, not credentials (MYSQL_ALLOW_EMPTY_PASSWORD).
	CredentialSwitch *regexp.Regexp
	// Rand is the source of generated passwords; crypto/rand.Reader by default.
	Rand io.Reader
}

// GeneratedPasswordLength is the length, in characters, of a password that
// stsguard generates for an image that cannot start without one.
const GeneratedPasswordLength = 32

// DefaultConfig returns the built-in profiles and credential patterns:
// cassandra 300 s as the seed documents advise; mysql, mariadb, postgres,
// mongo and elasticsearch 120 s; kafka, zookeeper, rabbitmq and redis 60 s.
func DefaultConfig() Config {
	mysqlOptional := []EnvCondition{{Name: "MYSQL_ALLOW_EMPTY_PASSWORD"}, {Name: "MYSQL_RANDOM_ROOT_PASSWORD"}}
	return Config{
		Profiles: []ImageProfile{
			{Name: "cassandra", Images: []string{"cassandra"}, TerminationGracePeriodSeconds: 300},
			{Name: "mysql", Images: []string{"mysql", "mysql-server", "percona-server", "percona"}, TerminationGracePeriodSeconds: 120,
				PasswordEnv: "MYSQL_ROOT_PASSWORD", PasswordOptionalWhen: mysqlOptional},
			{Name: "mariadb", Images: []string{"mariadb"}, TerminationGracePeriodSeconds: 120,
				PasswordEnv: "MYSQL_ROOT_PASSWORD", PasswordOptionalWhen: append([]EnvCondition{
					{Name: "MARIADB_ROOT_PASSWORD"}, {Name: "MARIADB_ROOT_PASSWORD_FILE"},
					{Name: "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD"}, {Name: "MARIADB_RANDOM_ROOT_PASSWORD"},
				}, mysqlOptional...)},
			{Name: "postgres", Images: []string{"postgres", "postgresql", "postgis"}, TerminationGracePeriodSeconds: 120,
				PasswordEnv: "POSTGRES_PASSWORD", PasswordOptionalWhen: []EnvCondition{{Name: "POSTGRES_HOST_AUTH_METHOD", Value: "trust"}}},
			{Name: "mongo", Images: []string{"mongo", "mongodb"}, TerminationGracePeriodSeconds: 120},
			{Name: "elasticsearch", Images: []string{"elasticsearch"}, TerminationGracePeriodSeconds: 120},
			{Name: "kafka", Images: []string{"kafka", "cp-kafka"}, TerminationGracePeriodSeconds: 60},
			{Name: "zookeeper", Images: []string{"zookeeper", "cp-zookeeper"}, TerminationGracePeriodSeconds: 60},
			{Name: "rabbitmq", Images: []string{"rabbitmq"}, TerminationGracePeriodSeconds: 60},
			{Name: "redis", Images: []string{"redis", "redis-cluster"}, TerminationGracePeriodSeconds: 60},
		},
		CredentialEnv:    regexp.MustCompile(`(?i)(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY)$`),
		CredentialSwitch: regexp.MustCompile(`(?i)(^|_)(ALLOW_EMPTY|RANDOM|ONETIME|SKIP|DISABLE|ENABLE|REQUIRE|USE)_`),
		Rand:             rand.Reader,
	}
}

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

// IsCredentialEnv reports whether an env var named name holds a credential.
func (c *Config) IsCredentialEnv(name string) bool {
	return c.CredentialEnv.MatchString(name) && !c.CredentialSwitch.MatchString(name)
}
