package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xeipuuv/gojsonschema"
)

var update = flag.Bool("update", false, "rewrite the golden files under cmd/stsguard/testdata")

// runCLI runs stsguard with args and stdin from the repository root and
// returns its standard output and exit status.
func runCLI(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.Execute()
	var exit *exitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exit):
		return out.String() + exit.msg, exit.code
	default:
		return out.String() + err.Error(), 1
	}
}

// golden compares got with the file cmd/stsguard/testdata/name (run from
// the repository root), or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("cmd", "stsguard", "testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./cmd/stsguard -run TestAuditGolden -update")
	assert.Equal(t, string(want), got, "%s differs: review and run with -update", path)
}

func TestAuditGolden(t *testing.T) {
	t.Chdir(filepath.Join("..", ".."))
	inputs := []struct {
		name string
		args []string
		code int
	}{
		// The seed manifests: the default-password MySQL is denied.
		{"examples", []string{"-f", "examples/mysql-plaintext-password", "-f", "examples/postgres", "-f", "examples/clusterip-service", "-f", "examples/cassandra"}, 1},
		// A broken document among good ones: exit 2, the good ones reported.
		{"testdata", []string{"-f", "test/testdata/audit"}, 2},
	}
	for _, in := range inputs {
		for _, format := range []string{"text", "json", "sarif", "junit"} {
			t.Run(in.name+"/"+format, func(t *testing.T) {
				out, code := runCLI(t, "", append([]string{"audit", "-o", format}, in.args...)...)
				assert.Equal(t, in.code, code)
				golden(t, "audit-"+in.name+"."+format, out)
			})
		}
	}
}

// TestAuditGoldenEachExample audits each directory under examples/ on its
// own, as `make demo` applies it, in every format, against
// testdata/audit-example-<dir>.<format> (go test ./cmd/stsguard -run
// TestAuditGolden -update writes them). The text golden ends with the exit
// status; every format must exit with the same.
func TestAuditGoldenEachExample(t *testing.T) {
	t.Chdir(filepath.Join("..", ".."))
	entries, err := os.ReadDir("examples")
	require.NoError(t, err)
	dirs := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dirs++
		dir := filepath.Join("examples", e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			codes := map[string]int{}
			for _, format := range []string{"text", "json", "sarif", "junit"} {
				out, code := runCLI(t, "", "audit", "-o", format, "-f", dir)
				codes[format] = code
				if format == "text" {
					out += fmt.Sprintf("(exit status %d)\n", code)
				}
				golden(t, "audit-example-"+e.Name()+"."+format, out)
			}
			for format, code := range codes {
				assert.Equal(t, codes["text"], code, "%s: -o %s exits with %d, -o text with %d", dir, format, code, codes["text"])
			}
		})
	}
	require.Positive(t, dirs, "no example directories under examples/")
}

func TestAuditSARIFValidatesAgainstTheSchema(t *testing.T) {
	t.Chdir(filepath.Join("..", ".."))
	out, _ := runCLI(t, "", "audit", "-o", "sarif", "-f", "examples", "-f", "test/testdata/audit")
	schema, err := os.ReadFile(filepath.Join("test", "testdata", "sarif-schema-2.1.0.json"))
	require.NoError(t, err)
	res, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewStringLoader(out))
	require.NoError(t, err)
	assert.True(t, res.Valid(), "%v", res.Errors())
	assert.Contains(t, out, `"ruleId": "weak-password"`)
	assert.Contains(t, out, `"startLine": 17`)
}

func TestAuditExitCodes(t *testing.T) {
	t.Chdir(filepath.Join("..", ".."))
	const headless = `apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: None, selector: {app: web}}
`
	const noProbe = `---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: bare}
spec:
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
`
	lenient := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(lenient, []byte("apiVersion: config.stsguard.io/v1alpha1\nkind: Policy\nrules:\n  weak-password: Warn\n"), 0o600))
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"clean", "", []string{"-f", "test/testdata/web"}, 0, "2 objects checked: deny 0, warn 0"},
		{"a warning passes", headless + noProbe, []string{"-f", "-"}, 0, "[rule: readiness-probe-missing]"},
		{"a warning fails with --fail-on warn", headless + noProbe, []string{"-f", "-", "--fail-on", "warn"}, 1, "warn 1"},
		{"a denial", "", []string{"-f", "examples/mysql-plaintext-password"}, 1, "deny 1"},
		{"Deny set to Warn by the policy", "", []string{"-f", "examples/mysql-plaintext-password", "--config", lenient}, 0, "deny 0, warn 3"},
		{"nothing to audit", "", nil, 2, "nothing to audit"},
		{"missing file", "", []string{"-f", "no/such/file.yaml"}, 2, "no/such/file.yaml: stat no/such/file.yaml: no such file or directory"},
		{"bad format", "", []string{"-f", "-", "-o", "xml"}, 2, `-o "xml": use one of text, json, sarif, junit`},
		{"bad fail-on", "", []string{"-f", "-", "--fail-on", "audit"}, 2, `--fail-on "audit": use deny or warn`},
		{"unknown flag", "", []string{"--frobnicate"}, 2, "unknown flag: --frobnicate"},
		{"bad policy", "", []string{"-f", "-", "--config", "no/such/policy.yaml"}, 2, "no/such/policy.yaml"},
		{"not YAML", "{{{", []string{"-f", "-"}, 2, "-:1:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runCLI(t, tc.stdin, append([]string{"audit"}, tc.args...)...)
			assert.Equal(t, tc.code, code, out)
			assert.Contains(t, out, tc.want)
		})
	}
}
