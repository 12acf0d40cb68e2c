package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersion(t *testing.T) {
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"version"})
	require.NoError(t, cmd.Execute())
	assert.Regexp(t, `^stsguard \S+ \(commit \S+, go1\.\S+ \S+/\S+\)\n$`, out.String())
}

func TestServeFlagsAreStable(t *testing.T) {
	serve, _, err := newRootCommand().Find([]string{"serve"})
	require.NoError(t, err)
	for flag, def := range map[string]string{
		"port": "9443", "cert-dir": "/tmp/k8s-webhook-server/serving-certs", "dns-name": "[stsguard.stsguard-system.svc]",
		"kubeconfig": "", "metrics-bind-address": ":8080", "health-probe-bind-address": ":8081", "enable-http2": "false",
		"config": "",
	} {
		f := serve.Flags().Lookup(flag)
		if assert.NotNil(t, f, flag) {
			assert.Equal(t, def, f.DefValue, flag)
		}
	}
}

// docs/rules.md is generated from the registry; regenerate it with make docs.
func TestRulesDocIsCurrent(t *testing.T) {
	have, err := os.ReadFile(filepath.Join("..", "..", "docs", "rules.md"))
	require.NoError(t, err)
	assert.Equal(t, rulesMarkdown(), string(have), "docs/rules.md is stale: run make docs")
}

func TestRulesCommand(t *testing.T) {
	run := func(args ...string) (string, error) {
		cmd := newRootCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&bytes.Buffer{})
		cmd.SetArgs(append([]string{"rules"}, args...))
		err := cmd.Execute()
		return out.String(), err
	}
	out, err := run()
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^headless-service-delete\s+Service\s+Warn\s+DELETE of a Service`, out)
	assert.Regexp(t, `(?m)^weak-password\s+StatefulSet,Secret\s+Deny\s`, out)

	out, err = run("--config", filepath.Join("..", "..", "examples", "policy.yaml"))
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^headless-service-delete\s+Service\s+Deny\s`, out, "the policy's action")

	bad := filepath.Join(t.TempDir(), "p.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("apiVersion: config.stsguard.io/v1alpha1\nkind: Policy\nrules:\n  nope: Deny\n"), 0o600))
	_, err = run("--config", bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rules[nope]: Not found")

	_, err = run("-o", "yaml")
	assert.ErrorContains(t, err, `unknown output "yaml"`)
}
