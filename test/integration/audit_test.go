package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stsguard/stsguard/audit"
	"github.com/stsguard/stsguard/lookup"
	"github.com/stsguard/stsguard/manifest"
	"github.com/stsguard/stsguard/test/harness"
	"github.com/stsguard/stsguard/webhook/rules"
)

// stsguardBinary builds cmd/stsguard once for the tests that run it.
func stsguardBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stsguard")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/stsguard")
	cmd.Dir = harness.Root()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// TestAuditCluster runs `stsguard audit --cluster` against the envtest
// apiserver: live objects judged as admission CREATEs, read-only.
func TestAuditCluster(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	ctx := context.Background()
	// A StatefulSet without a readinessProbe (Warn) and a Secret it does not
	// use whose password is a default (Deny): created under a lenient policy,
	// as objects that predate stsguard would be.
	setPolicy(t, "rules:\n  weak-password: Warn\n")
	sts := statefulSet(ns, "web", "", "nginx")
	sts.Spec.Template.Spec.Containers[0].ReadinessProbe = nil
	require.NoError(t, c.Create(ctx, sts))
	require.NoError(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		StringData: map[string]string{"password": "changeme"}}))
	resetPolicy(t)

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, cp.WriteKubeconfig(kubeconfig))
	cmd := exec.Command(stsguardBinary(t), "audit", "--cluster", "--kubeconfig", kubeconfig, "-n", ns, "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "stderr: %s", stderr.String())
	assert.Equal(t, 1, exit.ExitCode(), "a Deny finding exits 1")

	var report audit.Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &report), stdout.String())
	got := map[string]rules.Action{}
	for _, f := range report.Findings {
		assert.Equal(t, ns, f.Namespace)
		assert.Empty(t, f.File, "live objects have no file")
		got[f.Kind+"/"+f.Name+" "+f.Rule] = f.Action
	}
	assert.Equal(t, rules.Deny, got["Secret/db weak-password"])
	assert.Equal(t, rules.Warn, got["StatefulSet/web readiness-probe-missing"])
	assert.Equal(t, rules.Warn, got["StatefulSet/web service-name-empty"])
	assert.Equal(t, 2, report.Summary.Objects)
	assert.NotContains(t, stdout.String(), "changeme", "secret values never appear")
}

// TestAuditFilesAgainstCluster judges a manifest against the cluster's
// objects: the headless Service exists only in the cluster.
func TestAuditFilesAgainstCluster(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	require.NoError(t, c.Create(context.Background(), service(ns, "web", "None", map[string]string{"app": "web"})))

	live, err := audit.LoadCluster(context.Background(), c, ns)
	require.NoError(t, err)
	lk := lookup.MustObjects()
	for _, o := range live {
		require.NoError(t, lk.Add(o.Object))
	}
	manifestYAML := `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, readinessProbe: {tcpSocket: {port: 80}}}]
`
	objs, errs := manifest.Parse("web.yaml", []byte(manifestYAML), ns)
	require.Empty(t, errs)
	for _, o := range objs {
		require.NoError(t, lk.Add(o.Object))
	}
	e, err := rules.New(rules.DefaultConfig())
	require.NoError(t, err)
	r := audit.Evaluate(e, objs, lk)
	assert.Empty(t, r.Findings, "the live headless Service pairs with the manifest's StatefulSet")
	assert.Equal(t, 1, r.Summary.Objects)
}
