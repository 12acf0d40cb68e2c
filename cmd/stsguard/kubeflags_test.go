package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubectlFlags are flags kubectl has (kubectl options) that audit and
// expand take from k8s.io/cli-runtime, with their shorthands.
var kubectlFlags = map[string]string{
	"kubeconfig": "", "context": "", "namespace": "n", "user": "",
	"as": "", "as-group": "", "as-uid": "",
	"server": "s", "token": "", "certificate-authority": "", "client-certificate": "", "client-key": "",
	"insecure-skip-tls-verify": "", "tls-server-name": "", "request-timeout": "",
}

func TestAuditAndExpandTakeKubectlsFlags(t *testing.T) {
	root := newRootCommand()
	for _, name := range []string{"audit", "expand"} {
		cmd, _, err := root.Find([]string{name})
		require.NoError(t, err)
		for flag, short := range kubectlFlags {
			f := cmd.Flags().Lookup(flag)
			if assert.NotNil(t, f, "%s --%s", name, flag) {
				assert.Equal(t, short, f.Shorthand, "%s --%s", name, flag)
				assert.Contains(t, f.Annotations, kubectlFlagAnnotation, "%s --%s is listed with kubectl's flags", name, flag)
			}
		}
		assert.Nil(t, cmd.Flags().Lookup("cache-dir"), "stsguard does no discovery")
		assert.Contains(t, cmd.UsageString(), "\nKubectl flags (choose the cluster, user and namespace as kubectl does):\n")
	}

	audit, _, _ := root.Find([]string{"audit"})
	cluster := audit.Flags().Lookup("cluster")
	assert.Equal(t, "bool", cluster.Value.Type(), "audit --cluster audits the live cluster, as before")
	assert.NotContains(t, cluster.Annotations, kubectlFlagAnnotation)
	for flag, def := range map[string]string{"filename": "[]", "output": "text", "fail-on": "deny", "config": ""} {
		f := audit.Flags().Lookup(flag)
		if assert.NotNil(t, f, flag) {
			assert.Equal(t, def, f.DefValue, flag)
		}
	}
	assert.Contains(t, audit.Flags().Lookup("namespace").Usage, "with --cluster, the only namespace read (default: all)")

	expand, _, _ := root.Find([]string{"expand"})
	assert.Equal(t, "string", expand.Flags().Lookup("cluster").Value.Type(), "expand --cluster is kubectl's: the kubeconfig cluster")
	for flag, def := range map[string]string{"template": "", "size": "", "dry-run": "false", "timeout": "10m0s"} {
		f := expand.Flags().Lookup(flag)
		if assert.NotNil(t, f, flag) {
			assert.Equal(t, def, f.DefValue, flag)
		}
	}
}

// writeKubeconfig writes a kubeconfig with two clusters, users and
// contexts (a, current, whose namespace is team-a; b, without one).
func writeKubeconfig(t *testing.T) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["a"] = &clientcmdapi.Cluster{Server: "https://a.example:6443"}
	kc.Clusters["b"] = &clientcmdapi.Cluster{Server: "https://b.example:6443"}
	kc.AuthInfos["alice"] = &clientcmdapi.AuthInfo{Token: "alice-token"}
	kc.AuthInfos["bob"] = &clientcmdapi.AuthInfo{Token: "bob-token"}
	kc.Contexts["a"] = &clientcmdapi.Context{Cluster: "a", AuthInfo: "alice", Namespace: "team-a"}
	kc.Contexts["b"] = &clientcmdapi.Context{Cluster: "b", AuthInfo: "bob"}
	kc.CurrentContext = "a"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kc, path))
	return path
}

func TestKubeFlagsResolveAsKubectl(t *testing.T) {
	path := writeKubeconfig(t)
	t.Setenv("KUBECONFIG", path)
	type want struct {
		host, ns, token, as string
		groups              []string
		timeout             time.Duration
	}
	for _, tc := range []struct {
		args []string
		want want
	}{
		{nil, want{host: "https://a.example:6443", ns: "team-a", token: "alice-token"}},
		{[]string{"--kubeconfig", path, "--context", "b"}, want{host: "https://b.example:6443", ns: "default", token: "bob-token"}},
		{[]string{"--context=b", "-n", "prod"}, want{host: "https://b.example:6443", ns: "prod", token: "bob-token"}},
		{[]string{"--namespace=prod"}, want{host: "https://a.example:6443", ns: "prod", token: "alice-token"}},
		{[]string{"--cluster", "b"}, want{host: "https://b.example:6443", ns: "team-a", token: "alice-token"}},
		{[]string{"--user", "bob"}, want{host: "https://a.example:6443", ns: "team-a", token: "bob-token"}},
		{[]string{"--token", "t0ken", "-s", "https://c.example"}, want{host: "https://c.example", ns: "team-a", token: "t0ken"}},
		{[]string{"--as", "system:serviceaccount:prod:ci", "--as-group", "g1", "--as-group", "g2"},
			want{host: "https://a.example:6443", ns: "team-a", token: "alice-token", as: "system:serviceaccount:prod:ci", groups: []string{"g1", "g2"}}},
		{[]string{"--request-timeout", "5s"}, want{host: "https://a.example:6443", ns: "team-a", token: "alice-token", timeout: 5 * time.Second}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := &cobra.Command{Use: "x"}
			kf := bindKubeFlags(cmd)
			require.NoError(t, cmd.ParseFlags(tc.args))
			cfg, ns, err := kf.load()
			require.NoError(t, err)
			got := want{host: cfg.Host, ns: ns, token: cfg.BearerToken, as: cfg.Impersonate.UserName, groups: cfg.Impersonate.Groups, timeout: cfg.Timeout}
			assert.Equal(t, tc.want, got)
		})
	}

	t.Run("an unknown context", func(t *testing.T) {
		cmd := &cobra.Command{Use: "x"}
		kf := bindKubeFlags(cmd)
		require.NoError(t, cmd.ParseFlags([]string{"--context", "nope"}))
		_, _, err := kf.load()
		assert.ErrorContains(t, err, `loading kubeconfig: context "nope" does not exist`)
	})
	t.Run("no kubeconfig at all", func(t *testing.T) {
		t.Setenv("KUBECONFIG", "")
		t.Setenv("HOME", t.TempDir())
		cmd := &cobra.Command{Use: "x"}
		kf := bindKubeFlags(cmd)
		require.NoError(t, cmd.ParseFlags(nil))
		_, _, err := kf.load()
		assert.ErrorContains(t, err, "loading kubeconfig: Missing or incomplete configuration info.")
		assert.ErrorContains(t, err, "Via the command-line flag --kubeconfig", "not a connection refused on localhost:8080")

		require.NoError(t, cmd.ParseFlags([]string{"--server", "https://c.example", "--token", "t"}))
		cfg, ns, err := kf.load()
		require.NoError(t, err, "--server is enough")
		assert.Equal(t, "https://c.example", cfg.Host)
		assert.Equal(t, "default", ns)
	})
	t.Run("a missing kubeconfig file", func(t *testing.T) {
		cmd := &cobra.Command{Use: "x"}
		kf := bindKubeFlags(cmd)
		require.NoError(t, cmd.ParseFlags([]string{"--kubeconfig", filepath.Join(t.TempDir(), "missing")}))
		_, _, err := kf.load()
		assert.ErrorContains(t, err, "loading kubeconfig: ")
		assert.ErrorContains(t, err, "missing: no such file or directory")
	})
}

// audit and expand hand kubectl's flags to the loader: a context that does
// not exist is the error, before any request.
func TestAuditAndExpandUseTheKubectlFlags(t *testing.T) {
	t.Setenv("KUBECONFIG", writeKubeconfig(t))
	out, code := runCLI(t, "", "audit", "--cluster", "--context", "nope")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, out, `loading kubeconfig: context "nope" does not exist`)

	cmd := newRootCommand()
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs([]string{"expand", "statefulset/db", "--template", "data", "--size", "1Gi", "--context", "nope"})
	assert.ErrorContains(t, cmd.Execute(), `loading kubeconfig: context "nope" does not exist`)
}
