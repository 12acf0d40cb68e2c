package main

import (
	"bytes"
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
	} {
		f := serve.Flags().Lookup(flag)
		if assert.NotNil(t, f, flag) {
			assert.Equal(t, def, f.DefValue, flag)
		}
	}
}
