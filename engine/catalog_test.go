package engine

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/labels"
)

func TestCatalogIsCompleteAndStable(t *testing.T) {
	seen := map[string]bool{}
	kebab := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	for _, m := range Catalog() {
		assert.Regexp(t, kebab, m.ID)
		assert.False(t, seen[m.ID], "duplicate ID %s", m.ID)
		seen[m.ID] = true
		assert.NotEmpty(t, m.Description, m.ID)
		assert.NotEmpty(t, m.Kinds, "%s is in the catalog but registered for no kind", m.ID)
		assert.Contains(t, []Action{Deny, Warn, Mutate}, m.Action, m.ID)
	}
	e := &Engine{cfg: DefaultConfig()}
	e.register()
	registered := []string{}
	for _, r := range e.statefulSets.rules {
		registered = append(registered, r.ID)
	}
	for _, r := range e.services.rules {
		registered = append(registered, r.ID)
	}
	for _, r := range e.secrets.rules {
		registered = append(registered, r.ID)
	}
	for _, m := range e.statefulSets.mutators {
		registered = append(registered, m.ID)
	}
	for _, m := range e.services.mutators {
		registered = append(registered, m.ID)
	}
	for _, id := range registered {
		assert.True(t, seen[id], "%s is registered but missing from the catalog", id)
	}

	// The defaults the issue asks for, and IDs other tools already use.
	want := map[string]Action{
		HeadlessServiceNotHeadless: Deny, HeadlessServiceSelectorChange: Deny, HeadlessServiceDelete: Warn,
		HeadlessServiceDefault: Mutate, SecretKeyRemoved: Deny, SecretInUseDelete: Warn, WeakPassword: Deny,
		SecretRefMissing: Warn, StorageClassNotFound: Warn, StorageClassNotExpandable: Warn,
		VolumeClaimTemplateUnmounted: Warn, PVCRetentionDelete: Warn, PartitionExceedsReplicas: Warn,
		ReadinessProbeMissing: Warn, TerminationGracePeriodShort: Warn,
	}
	for _, m := range Catalog() {
		if a, ok := want[m.ID]; ok {
			assert.Equal(t, a, m.Action, m.ID)
		}
	}
	kinds := map[string][]Kind{}
	for _, m := range Catalog() {
		kinds[m.ID] = m.Kinds
	}
	assert.Equal(t, []Kind{KindStatefulSet, KindService}, kinds[HeadlessServiceNotHeadless])
	assert.Equal(t, []Kind{KindStatefulSet, KindSecret}, kinds[WeakPassword])
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"unknown rule", func(c *Config) { c.Actions = map[string]Action{"no-such-rule": Warn} }, `unknown rule "no-such-rule"`},
		{"bad action", func(c *Config) { c.Actions = map[string]Action{WeakPassword: "Block"} }, "not one of Deny, Warn, Audit, Off"},
		{"action on a mutation", func(c *Config) { c.Actions = map[string]Action{RolloutPartition: Off} }, "is a mutation"},
		{"rule turned off as a mutation", func(c *Config) { c.Mutations = map[string]bool{WeakPassword: false} }, "is not a mutation"},
		{"exemption of an unknown rule", func(c *Config) {
			c.Exemptions = []NamespaceExemption{{Rules: []string{"nope"}, Namespaces: []string{"a"}}}
		}, `unknown rule "nope"`},
		{"missing pattern", func(c *Config) { c.PasswordName = nil }, "must be set"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			_, err := New(cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := New(DefaultConfig())
	assert.NoError(t, err)
}

func TestEngineAction(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Actions = map[string]Action{HeadlessServiceDelete: Deny}
	cfg.Mutations = map[string]bool{TerminationGracePeriod: false}
	cfg.Exemptions = []NamespaceExemption{{NamespaceSelector: labels.Everything()}}
	e, err := New(cfg)
	require.NoError(t, err)
	assert.Equal(t, Deny, e.Action(HeadlessServiceDelete))
	assert.Equal(t, Deny, e.Action(WeakPassword))
	assert.Equal(t, Off, e.Action(TerminationGracePeriod))
	assert.Equal(t, Mutate, e.Action(RolloutPartition))
}

func TestWeakPasswordMatching(t *testing.T) {
	c := DefaultConfig()
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
