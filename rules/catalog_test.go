package rules

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/kinds"
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
		assert.Contains(t, []engine.Action{engine.Deny, engine.Warn, engine.Mutate}, m.Action, m.ID)
	}
	// The default actions users rely on, and IDs other tools already use.
	want := map[string]engine.Action{
		HeadlessServiceNotHeadless: engine.Deny, HeadlessServiceSelectorChange: engine.Deny, HeadlessServiceDelete: engine.Warn,
		HeadlessServiceDefault: engine.Mutate, SecretKeyRemoved: engine.Deny, SecretInUseDelete: engine.Warn, WeakPassword: engine.Deny,
		SecretRefMissing: engine.Warn, StorageClassNotFound: engine.Warn, StorageClassNotExpandable: engine.Warn,
		VolumeClaimTemplateUnmounted: engine.Warn, PVCRetentionDelete: engine.Warn, PartitionExceedsReplicas: engine.Warn,
		ReadinessProbeMissing: engine.Warn, TerminationGracePeriodShort: engine.Warn,
	}
	for _, m := range Catalog() {
		if a, ok := want[m.ID]; ok {
			assert.Equal(t, a, m.Action, m.ID)
		}
	}
	judged := map[string][]kinds.Kind{}
	for _, m := range Catalog() {
		judged[m.ID] = m.Kinds
	}
	assert.Equal(t, []kinds.Kind{kinds.StatefulSet, kinds.Service}, judged[HeadlessServiceNotHeadless])
	assert.Equal(t, []kinds.Kind{kinds.StatefulSet, kinds.Secret}, judged[WeakPassword])
}

// TestEachRuleIsDeclaredInTheFileNamedAfterIt holds the layout promise a
// newcomer relies on: rule <id> is declared, once, in rules/<id>.go.
func TestEachRuleIsDeclaredInTheFileNamedAfterIt(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	declared := regexp.MustCompile(`(?m)^const \w+ = "([a-z0-9-]+)"\n\nvar \w+ = engine\.Rule\{`)
	where := map[string][]string{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range declared.FindAllStringSubmatch(string(src), -1) {
			where[m[1]] = append(where[m[1]], f)
		}
	}
	for _, r := range All() {
		assert.Equal(t, []string{r.ID + ".go"}, where[r.ID], "rule %s", r.ID)
	}
	assert.Len(t, where, len(All()), "a declaration that All does not list")
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		edit func(*engine.Config)
		want string
	}{
		{"unknown rule", func(c *engine.Config) { c.Actions = map[string]engine.Action{"no-such-rule": engine.Warn} }, `unknown rule "no-such-rule"`},
		{"bad action", func(c *engine.Config) { c.Actions = map[string]engine.Action{WeakPassword: "Block"} }, "not one of Deny, Warn, Audit, Off"},
		{"action on a mutation", func(c *engine.Config) { c.Actions = map[string]engine.Action{RolloutPartition: engine.Off} }, "is a mutation"},
		{"rule turned off as a mutation", func(c *engine.Config) { c.Mutations = map[string]bool{WeakPassword: false} }, "is not a mutation"},
		{"exemption of an unknown rule", func(c *engine.Config) {
			c.Exemptions = []engine.NamespaceExemption{{Rules: []string{"nope"}, Namespaces: []string{"a"}}}
		}, `unknown rule "nope"`},
		{"missing pattern", func(c *engine.Config) { c.Credentials.PasswordName = nil }, "must be set"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := engine.DefaultConfig()
			tc.edit(&cfg)
			_, err := New(cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := New(engine.DefaultConfig())
	assert.NoError(t, err)
}

func TestEngineAction(t *testing.T) {
	cfg := engine.DefaultConfig()
	cfg.Actions = map[string]engine.Action{HeadlessServiceDelete: engine.Deny}
	cfg.Mutations = map[string]bool{TerminationGracePeriod: false}
	cfg.Exemptions = []engine.NamespaceExemption{{NamespaceSelector: labels.Everything()}}
	e, err := New(cfg)
	require.NoError(t, err)
	assert.Equal(t, engine.Deny, e.Action(HeadlessServiceDelete))
	assert.Equal(t, engine.Deny, e.Action(WeakPassword))
	assert.Equal(t, engine.Off, e.Action(TerminationGracePeriod))
	assert.Equal(t, engine.Mutate, e.Action(RolloutPartition))
}
