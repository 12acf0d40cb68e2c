package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/stsguard/stsguard/audit"
	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/test/harness"
)

// TestPlugin installs stsguard as the kubectl plugin kubectl-stsguard, as
// krew does (a link on PATH to the binary), and runs it through the real
// kubectl: kubectl finds it, runs `kubectl stsguard ...`, and kubectl's
// flags after the plugin's name choose the kubeconfig, context, namespace
// and user as they do for kubectl itself.
func TestPlugin(t *testing.T) {
	plugins := t.TempDir()
	plugin := filepath.Join(plugins, "kubectl-stsguard")
	require.NoError(t, os.Symlink(harness.BuildStsguard(t), plugin))
	// kubectl completes the plugin's arguments with kubectl_complete-stsguard
	// (make install-plugin links it so).
	require.NoError(t, os.Symlink(plugin, filepath.Join(plugins, "kubectl_complete-stsguard")))
	// kubectl looks plugins up on its PATH; kubectl() runs it with this
	// process's environment (and KUBECONFIG=cl.Kubeconfig).
	t.Setenv("PATH", plugins+string(os.PathListSeparator)+os.Getenv("PATH"))

	c, _ := newClient(t)
	ns := namespace(t, c)
	// A StatefulSet whose headless Service is missing: admitted, with a
	// warning that audit finds again.
	require.NoError(t, c.Create(ctx(), harness.StatefulSet(ns, "web", "web", "nginx")))

	// A kubeconfig whose current context leads nowhere, and a context
	// plugin-e2e to the cluster with ns as its namespace: only the flags
	// reach the cluster.
	kc, err := clientcmd.LoadFromFile(cl.Kubeconfig)
	require.NoError(t, err)
	kc.Clusters["nowhere"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	kc.Contexts["nowhere"] = &clientcmdapi.Context{Cluster: "nowhere", AuthInfo: "admin"}
	e2e := *kc.Contexts[kc.CurrentContext]
	e2e.Namespace = ns
	kc.Contexts["plugin-e2e"] = &e2e
	kc.CurrentContext = "nowhere"
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kc, kubeconfig))

	t.Run("kubectl plugin list finds it", func(t *testing.T) {
		res := kubectl(t, "", "plugin", "list")
		assert.Contains(t, strings.Split(res.Stdout, "\n"), plugin, "%s%s", res.Stdout, res.Stderr)
		assert.NotContains(t, res.Stderr, plugin, "no warning about it")
	})

	t.Run("version", func(t *testing.T) {
		res := mustKubectl(t, "", "stsguard", "version")
		assert.Regexp(t, `^stsguard \S+ \(commit \S+, go1\.\S+ \S+/\S+\)\n$`, res.Stdout)
	})

	t.Run("help says kubectl stsguard", func(t *testing.T) {
		res := mustKubectl(t, "", "stsguard", "--help")
		assert.Contains(t, res.Stdout, "Usage:\n  kubectl stsguard [command]\n")
		for _, sub := range []string{"audit", "expand", "rules", "version"} {
			assert.Regexp(t, `(?m)^  `+sub+`\s`, res.Stdout)
		}
		res = mustKubectl(t, "", "stsguard", "audit", "--help")
		assert.Contains(t, res.Stdout, "Usage:\n  kubectl stsguard audit (-f PATH... | --cluster) [flags]\n")
		assert.Contains(t, res.Stdout, "Kubectl flags")
		assert.Regexp(t, `(?m)^\s+--context string\s`, res.Stdout)
		assert.Regexp(t, `(?m)^\s+--as string\s`, res.Stdout)
	})

	t.Run("kubectl completes its commands and flags", func(t *testing.T) {
		res := mustKubectl(t, "", "__complete", "stsguard", "")
		for _, sub := range []string{"audit", "expand", "rules", "version"} {
			assert.Regexp(t, `(?m)^`+sub+`\t`, res.Stdout)
		}
		assert.NotRegexp(t, `(?m)^serve\t`, res.Stdout)
		res = mustKubectl(t, "", "__complete", "stsguard", "audit", "--con")
		assert.Regexp(t, `(?m)^--context\t`, res.Stdout)
		assert.Regexp(t, `(?m)^--config\t`, res.Stdout)
	})

	// findings runs kubectl stsguard audit --cluster -o json with args and
	// returns its findings as "Kind/name rule: Action", and its exit code.
	findings := func(t *testing.T, args ...string) ([]string, harness.KubectlResult) {
		t.Helper()
		res := kubectl(t, "", append([]string{"stsguard", "audit", "--cluster", "-o", "json"}, args...)...)
		if res.ExitCode > 1 {
			return nil, res
		}
		var report audit.Report
		require.NoError(t, json.Unmarshal([]byte(res.Stdout), &report), "%s%s", res.Stdout, res.Stderr)
		var got []string
		for _, f := range report.Findings {
			assert.Equal(t, ns, f.Namespace, "-n %s reads only that namespace", ns)
			got = append(got, f.Kind+"/"+f.Name+" "+f.Rule+": "+string(f.Action))
		}
		return got, res
	}
	want := "StatefulSet/web headless-service-missing: " + string(engine.Warn)

	t.Run("audit --cluster -n with the KUBECONFIG kubectl has", func(t *testing.T) {
		got, res := findings(t, "-n", ns)
		assert.Equal(t, 0, res.ExitCode, "a warning only: %s", res.Stderr)
		assert.Equal(t, []string{want}, got)

		res = mustKubectl(t, "", "stsguard", "audit", "--cluster", "--namespace", ns)
		assert.Contains(t, res.Stdout, "StatefulSet "+ns+"/web")
		assert.Contains(t, res.Stdout, "[rule: headless-service-missing]")
	})

	t.Run("audit --cluster with --kubeconfig and --context", func(t *testing.T) {
		got, res := findings(t, "-n", ns, "--kubeconfig", kubeconfig, "--context", "plugin-e2e")
		assert.Equal(t, 0, res.ExitCode, res.Stderr)
		assert.Equal(t, []string{want}, got)

		// Without --context, the file's current context: nowhere.
		_, res = findings(t, "-n", ns, "--kubeconfig", kubeconfig)
		assert.Equal(t, 2, res.ExitCode, "%s%s", res.Stdout, res.Stderr)
		assert.Contains(t, res.Stderr, "127.0.0.1:1")
	})

	t.Run("audit --cluster as another user with --as and --as-group", func(t *testing.T) {
		user := "system:serviceaccount:" + ns + ":nobody"
		_, res := findings(t, "-n", ns, "--as", user)
		assert.Equal(t, 2, res.ExitCode, "%s%s", res.Stdout, res.Stderr)
		assert.Contains(t, res.Stderr, `User "`+user+`" cannot list resource`)

		got, res := findings(t, "-n", ns, "--as", user, "--as-group", "system:masters")
		assert.Equal(t, 0, res.ExitCode, res.Stderr)
		assert.Equal(t, []string{want}, got)
	})

	t.Run("expand takes the namespace from --context", func(t *testing.T) {
		res := kubectl(t, "", "stsguard", "expand", "statefulset/missing", "--template", "data", "--size", "2Gi", "--dry-run",
			"--kubeconfig", kubeconfig, "--context", "plugin-e2e")
		assert.Equal(t, 1, res.ExitCode, "%s%s", res.Stdout, res.Stderr)
		assert.Contains(t, res.Stderr, "statefulset/missing not found in namespace "+ns)
	})

	t.Run("serve is hidden but still the same binary", func(t *testing.T) {
		res := mustKubectl(t, "", "stsguard", "--help")
		assert.False(t, slices.ContainsFunc(strings.Split(res.Stdout, "\n"), func(l string) bool { return strings.HasPrefix(l, "  serve ") }))
		res = mustKubectl(t, "", "stsguard", "serve", "--help")
		assert.Contains(t, res.Stdout, "Usage:\n  kubectl stsguard serve [flags]\n")
	})
}
