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
		"port": "9443", "cert-dir": "/tmp/k8s-webhook-server/serving-certs", "dns-name": "[stsguard.stsguard-system.svc,stsguard.stsguard-system.svc.cluster.local]",
		"kubeconfig": "", "metrics-bind-address": ":8080", "health-probe-bind-address": ":8081", "enable-http2": "false",
		"config": "", "manage-certs": "false", "cert-secret": "stsguard-serving-cert", "webhook-configuration-name": "stsguard",
		"ca-validity": "26280h0m0s", "cert-validity": "2160h0m0s", "pprof-bind-address": "", "host": "",
	} {
		f := serve.Flags().Lookup(flag)
		if assert.NotNil(t, f, flag) {
			assert.Equal(t, def, f.DefValue, flag)
		}
	}
}

// pprof serves memory contents without authentication: off unless asked
// for, and then only where asked.
func TestServePprofIsOffByDefault(t *testing.T) {
	serve, _, err := newRootCommand().Find([]string{"serve"})
	require.NoError(t, err)
	f := serve.Flags().Lookup("pprof-bind-address")
	require.NotNil(t, f, "serve has --pprof-bind-address")
	assert.Equal(t, "", f.DefValue, "off by default")
	require.NoError(t, serve.Flags().Parse([]string{"--port", "9443"}))
	assert.Equal(t, "", f.Value.String(), "off when not given")
	require.NoError(t, serve.Flags().Parse([]string{"--pprof-bind-address", "127.0.0.1:6060"}))
	assert.Equal(t, "127.0.0.1:6060", f.Value.String())
}

func TestServeRejectsCertDirWithManageCerts(t *testing.T) {
	cmd := newRootCommand()
	cmd.SetArgs([]string{"serve", "--manage-certs", "--cert-dir=/certs"})
	err := cmd.Execute()
	require.Error(t, err)
	var ee *exitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 2, ee.code)
	assert.Contains(t, err.Error(), "--cert-dir and --manage-certs exclude each other")
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

func TestParseStatefulSet(t *testing.T) {
	for _, tc := range []struct{ arg, name, err string }{
		{"statefulset/db", "db", ""},
		{"sts/db", "db", ""},
		{"statefulsets.apps/db", "db", ""},
		{"db", "db", ""},
		{"deployment/db", "", `"deployment/db": stsguard expand works on StatefulSets only; name one as statefulset/NAME`},
		{"statefulset/", "", `"statefulset/": name one StatefulSet as statefulset/NAME`},
		{"statefulset/a/b", "", `"statefulset/a/b": name one StatefulSet as statefulset/NAME`},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			name, err := parseStatefulSet(tc.arg)
			if tc.err != "" {
				assert.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.name, name)
		})
	}
}

func TestExpandCommandRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"statefulset/db", "--template", "data"}, `required flag(s) "size" not set`},
		{[]string{"statefulset/db", "--template", "data", "--size", "lots"}, `--size "lots": quantities must match the regular expression`},
		{[]string{"statefulset/db", "--template", "data", "--size", "0"}, `--size "0": must be positive`},
		{[]string{"deployment/db", "--template", "data", "--size", "1Gi"}, "works on StatefulSets only"},
		{[]string{"--template", "data", "--size", "1Gi"}, "accepts 1 arg(s), received 0"},
	} {
		cmd := newRootCommand()
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		cmd.SetArgs(append([]string{"expand"}, tc.args...))
		err := cmd.Execute()
		require.Error(t, err, tc.args)
		assert.Contains(t, err.Error(), tc.err)
	}
}
