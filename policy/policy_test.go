package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/rules"
)

const header = "apiVersion: config.stsguard.io/v1alpha1\nkind: Policy\n"

func TestParseExample(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "examples", "policy.yaml"))
	require.NoError(t, err)
	e, err := rules.New(cfg)
	require.NoError(t, err)
	assert.Equal(t, engine.Deny, e.Action(rules.HeadlessServiceDelete))
	assert.Equal(t, engine.Audit, e.Action(rules.ReadinessProbeMissing))
	assert.Equal(t, engine.Deny, e.Action(rules.WeakPassword), "unset rules keep their default")
	require.Len(t, cfg.Exemptions, 2)
	assert.Equal(t, []string{"sandbox"}, cfg.Exemptions[0].Namespaces)
	assert.True(t, cfg.Exemptions[1].NamespaceSelector.Matches(labels.Set{"stsguard.io/enforcement": "off"}))
	p := cfg.Credentials.Profile("scylladb/scylla:5")
	require.NotNil(t, p)
	assert.Equal(t, int64(600), p.TerminationGracePeriodSeconds)
	assert.NotNil(t, cfg.Credentials.Profile("mysql:8"), "built-in profiles stay")
}

// YAML 1.1 reads unquoted On and Off as booleans; they mean what they say.
func TestParseUnquotedOnOff(t *testing.T) {
	cfg, err := Parse([]byte(header + "rules:\n  weak-password: Off\n  readiness-probe-missing: \"Off\"\nmutations:\n  rollout-partition: Off\n  termination-grace-period: On\n"))
	require.NoError(t, err)
	e, err := rules.New(cfg)
	require.NoError(t, err)
	assert.Equal(t, engine.Off, e.Action(rules.WeakPassword))
	assert.Equal(t, engine.Off, e.Action(rules.ReadinessProbeMissing))
	assert.Equal(t, engine.Off, e.Action(rules.RolloutPartition))
	assert.Equal(t, engine.Mutate, e.Action(rules.TerminationGracePeriod))
}

func TestParseEmptyPolicyIsTheDefault(t *testing.T) {
	cfg, err := Parse([]byte(header))
	require.NoError(t, err)
	e, err := rules.New(cfg)
	require.NoError(t, err)
	for _, m := range rules.Catalog() {
		want := m.Action
		assert.Equal(t, want, e.Action(m.ID), m.ID)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{"empty file", "", "the file is empty"},
		{"wrong apiVersion", "apiVersion: v1\nkind: Policy\n", `apiVersion: Unsupported value: "v1"`},
		{"wrong kind", "apiVersion: config.stsguard.io/v1alpha1\nkind: Config\n", `kind: Unsupported value: "Config"`},
		{"unknown field", header + "rule:\n  weak-password: Warn\n", `unknown field "rule"`},
		{"duplicate field", header + "rules: {}\nrules: {}\n", `key "rules" already set`},
		{"unknown rule", header + "rules:\n  weak-pasword: Warn\n", `rules[weak-pasword]: Not found: "weak-pasword"`},
		{"unknown action", header + "rules:\n  weak-password: Block\n", `rules[weak-password]: Unsupported value: "Block": supported values: "Deny", "Warn", "Audit", "Off"`},
		{"action on a mutation", header + "rules:\n  rollout-partition: Off\n", "is a mutation: set it to On or Off under mutations"},
		{"mutation mode", header + "mutations:\n  rollout-partition: Maybe\n", `mutations[rollout-partition]: Unsupported value: "Maybe"`},
		{"action true", header + "rules:\n  weak-password: On\n", "not true (YAML reads an unquoted On or yes as true)"},
		{"mode on a rule", header + "mutations:\n  weak-password: Off\n", "is a validating rule"},
		{"exemption of nothing", header + "exemptions:\n- rules: [weak-password]\n", "exemptions[0]: Required value"},
		{"exemption of an unknown rule", header + "exemptions:\n- namespaces: [a]\n  rules: [nope]\n", `exemptions[0].rules[0]: Not found: "nope"`},
		{"bad selector", header + "exemptions:\n- namespaceSelector:\n    matchExpressions:\n    - {key: a, operator: Near}\n", "exemptions[0].namespaceSelector: Invalid value"},
		{"bad regexp", header + "passwordNamePattern: '(['\n", "passwordNamePattern: Invalid value"},
		{"profile without name", header + "imageProfiles:\n- images: [x]\n", "imageProfiles[0].name: Required value"},
		{"required password without env", header + "imageProfiles:\n- name: x\n  images: [x]\n  passwordRequired: true\n", "imageProfiles[0].passwordEnv: Required value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(header+"rules:\n  nope: Warn\n"), 0o600))
	_, err := Load(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "policy "+path+": rules[nope]")
	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
