package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInvocation(t *testing.T) {
	type inv struct {
		name     string
		complete bool
	}
	for argv0, want := range map[string]inv{
		"stsguard":                                 {"stsguard", false},
		"/usr/local/bin/stsguard":                  {"stsguard", false},
		"./bin/stsguard":                           {"stsguard", false},
		"kubectl-stsguard":                         {"kubectl stsguard", false},
		"/home/me/.krew/bin/kubectl-stsguard":      {"kubectl stsguard", false},
		"kubectl-stsguard.EXE":                     {"kubectl stsguard", false},
		"kubectl-sts_guard":                        {"kubectl sts-guard", false},
		"/usr/local/bin/kubectl_complete-stsguard": {"kubectl stsguard", true},
		"kubectl_complete-stsguard.exe":            {"kubectl stsguard", true},
		"kubectl-":                                 {"stsguard", false},
		"kubectl_complete-":                        {"stsguard", false},
		"kubectl":                                  {"stsguard", false},
		"stsguard.test":                            {"stsguard", false},
	} {
		name, complete := invocation(argv0)
		assert.Equal(t, want, inv{name, complete}, argv0)
	}
}

// help runs the command named name with args and returns what it printed.
func help(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := newRootCommandAs(name)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	require.NoError(t, cmd.Execute())
	return out.String()
}

func TestPluginHelpSaysKubectlStsguard(t *testing.T) {
	const name = "kubectl stsguard"
	root := help(t, name, "--help")
	assert.Contains(t, root, "Usage:\n  kubectl stsguard [command]\n")
	assert.Contains(t, root, `Use "kubectl stsguard [command] --help" for more information about a command.`)
	for _, sub := range []string{"audit", "expand", "rules", "version"} {
		assert.Regexp(t, `(?m)^  `+sub+`\s`, root, "the plugin lists %s", sub)
	}
	assert.NotRegexp(t, `(?m)^  serve\s`, root, "serve is not the plugin's purpose")
	assert.NotRegexp(t, `(?m)^  completion\s`, root, "its scripts would complete a command named stsguard")

	audit := help(t, name, "audit", "--help")
	assert.Contains(t, audit, "Usage:\n  kubectl stsguard audit (-f PATH... | --cluster) [flags]\n")
	assert.Contains(t, audit, "\n  kubectl stsguard audit -f manifests/\n")
	assert.Contains(t, audit, "helm template my-release ./chart | kubectl stsguard audit -f - -o sarif")
	assert.Contains(t, audit, "\n  kubectl stsguard audit --cluster --namespace prod --config policy.yaml\n")

	expand := help(t, name, "expand", "--help")
	assert.Contains(t, expand, "Usage:\n  kubectl stsguard expand statefulset/NAME --template TEMPLATE --size SIZE [flags]\n")
	assert.Contains(t, expand, "\n  kubectl stsguard expand statefulset/mysql -n prod --template data --size 50Gi\n")

	assert.Contains(t, help(t, name, "rules", "--help"), "Usage:\n  kubectl stsguard rules [flags]\n")
	assert.Contains(t, help(t, name, "version", "--help"), "Usage:\n  kubectl stsguard version [flags]\n")
	assert.Regexp(t, `^stsguard \S+ \(commit`, help(t, name, "version"))

	// serve still runs when named: hidden, not removed.
	assert.Contains(t, help(t, name, "serve", "--help"), "Usage:\n  kubectl stsguard serve [flags]\n")
}

func TestStsguardHelpIsUnchanged(t *testing.T) {
	root := help(t, "stsguard", "--help")
	assert.Contains(t, root, "Usage:\n  stsguard [command]\n")
	assert.Regexp(t, `(?m)^  serve\s`, root)
	assert.NotContains(t, root, "kubectl stsguard")
	audit := help(t, "stsguard", "audit", "--help")
	assert.Contains(t, audit, "Usage:\n  stsguard audit (-f PATH... | --cluster) [flags]\n")
	assert.Contains(t, audit, "\n  stsguard audit -f manifests/\n")
	assert.NotContains(t, audit, "kubectl stsguard")
}
