package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/audit"
	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/manifest"
	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/test/harness"
)

// TestAuditCluster runs `stsguard audit --cluster` against the envtest
// apiserver: live objects judged as admission CREATEs, read-only.
func TestAuditCluster(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	ctx := context.Background()
	// A StatefulSet without a readinessProbe (Warn) and a Secret it does not
	// use whose password is a default (Deny): created under a lenient policy,
	// as objects that predate stsguard would be.
	srv.SetPolicy(t, "rules:\n  weak-password: Warn\n")
	sts := harness.StatefulSet(ns, "web", "", "nginx")
	sts.Spec.Template.Spec.Containers[0].ReadinessProbe = nil
	require.NoError(t, c.Create(ctx, sts))
	require.NoError(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		StringData: map[string]string{"password": "changeme"}}))
	srv.ResetPolicy(t)

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, cp.WriteKubeconfig(kubeconfig))
	cmd := exec.Command(harness.BuildStsguard(t), "audit", "--cluster", "--kubeconfig", kubeconfig, "-n", ns, "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "stderr: %s", stderr.String())
	assert.Equal(t, 1, exit.ExitCode(), "a Deny finding exits 1")

	var report audit.Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &report), stdout.String())
	got := map[string]engine.Action{}
	for _, f := range report.Findings {
		assert.Equal(t, ns, f.Namespace)
		assert.Empty(t, f.File, "live objects have no file")
		got[f.Kind+"/"+f.Name+" "+f.Rule] = f.Action
	}
	assert.Equal(t, engine.Deny, got["Secret/db weak-password"])
	assert.Equal(t, engine.Warn, got["StatefulSet/web readiness-probe-missing"])
	assert.Equal(t, engine.Warn, got["StatefulSet/web service-name-empty"])
	assert.Equal(t, 2, report.Summary.Objects)
	decided := map[string]audit.Decision{}
	for _, d := range report.Objects {
		decided[d.Kind+"/"+d.Name] = d
	}
	assert.True(t, decided["Secret/db"].Denied)
	assert.Equal(t, []string{"weak-password"}, decided["Secret/db"].Deny)
	assert.False(t, decided["StatefulSet/web"].Denied)
	assert.Equal(t, []string{"readiness-probe-missing", "service-name-empty"}, decided["StatefulSet/web"].Warn)
	assert.NotContains(t, stdout.String(), "changeme", "secret values never appear")
}

// TestAuditFilesAgainstCluster replays a manifest on top of the cluster's
// objects: the headless Service exists only in the cluster.
func TestAuditFilesAgainstCluster(t *testing.T) {
	c, _ := newClient(t)
	ns := harness.Namespace(t, c)
	require.NoError(t, c.Create(context.Background(), harness.Service(ns, "web", "None", map[string]string{"app": "web"})))

	manifestYAML := harness.Testdata(t, "web/statefulset.yaml")
	e, err := rules.New(engine.DefaultConfig())
	require.NoError(t, err)
	r, err := audit.Run(context.Background(), e, audit.Source{Files: []string{"-"}, Stdin: strings.NewReader(manifestYAML), Cluster: c, Namespace: ns})
	require.NoError(t, err)
	require.Empty(t, r.Errors)
	assert.Empty(t, r.Findings, "the live headless Service pairs with the manifest's StatefulSet")
	assert.Equal(t, 1, r.Summary.Objects)
}

// observed is what the apiserver answered to one create: the same fields
// as an audit.Decision.
type observed struct {
	Denied               bool
	Deny, Warn, Mutation []string
}

// TestAuditReplayMatchesTheWebhooks creates the objects of each manifest
// through the apiserver, one at a time in the order audit replays them (as
// kubectl apply -f sends them), and checks that audit's decision on each
// (denied or not, the Deny and Warn rules, the mutations) is the
// apiserver's answer with stsguard's webhooks. The cluster's objects (other
// tests' StorageClasses) are the replay's starting point, as with
// `stsguard audit --cluster -f`.
func TestAuditReplayMatchesTheWebhooks(t *testing.T) {
	const (
		clusterIPService = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n"
		reader           = `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: reader}
spec:
  serviceName: mysql
  selector: {matchLabels: {app: mysql}}
  template:
    metadata: {labels: {app: mysql}}
    spec:
      containers:
      - name: reader
        image: nginx
        readinessProbe: {tcpSocket: {port: 80}}
        env: [{name: ROOT_PASSWORD, valueFrom: {secretKeyRef: {name: mysql-credentials, key: mysql-root-password}}}]
`
	)
	webStatefulSet := harness.Testdata(t, "web/statefulset.yaml")
	example := func(dir, file string) string {
		data, err := os.ReadFile(filepath.Join(harness.Root(), "examples", dir, file))
		require.NoError(t, err)
		return string(data)
	}
	cases := []struct {
		name   string
		docs   []string
		denied []string // the objects denied, as Kind/name
	}{
		{"Service without clusterIP then its StatefulSet", []string{example("clusterip-service", "web.yaml")}, []string{"StatefulSet/web"}},
		{"StatefulSet then its Service without clusterIP", []string{webStatefulSet, clusterIPService}, nil},
		{"a literal moved into a Secret that a later StatefulSet reads", []string{example("mysql-literal-password", "mysql.yaml"), reader}, nil},
		{"a reference to that Secret before it is written", []string{reader, example("mysql-literal-password", "mysql.yaml")}, nil},
		{"a generated password and a raised grace period", []string{example("postgres", "postgres.yaml")}, nil},
	}
	e, err := rules.New(engine.DefaultConfig())
	require.NoError(t, err)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c, w := newClient(t)
			ns := harness.Namespace(t, c)
			docs := strings.Join(tc.docs, "\n---\n")
			objs, errs := manifest.Parse("m.yaml", []byte(docs), ns)
			require.Empty(t, errs)
			r, err := audit.Run(ctx, e, audit.Source{Files: []string{"-"}, Stdin: strings.NewReader(docs), Cluster: c, Namespace: ns})
			require.NoError(t, err)
			require.Empty(t, r.Errors)

			var want, got []string
			var denied []string
			for _, d := range r.Objects {
				want = append(want, fmt.Sprintf("%s/%s %+v", d.Kind, d.Name, observed{Denied: d.Denied, Deny: d.Deny, Warn: d.Warn, Mutation: d.Mutations}))
				if d.Denied {
					denied = append(denied, d.Kind+"/"+d.Name)
				}
			}
			assert.Equal(t, tc.denied, denied, "audit's denials")

			for _, o := range objs {
				obj := o.Object.(client.Object)
				w.Take()
				err := c.Create(ctx, obj)
				if err != nil && !apierrors.IsInvalid(err) {
					require.NoError(t, err, "%s/%s", o.GVK.Kind, o.Name)
				}
				var ob observed
				var warns, changes []string
				for _, msg := range w.Take() {
					if strings.Contains(msg, "changed by stsguard") {
						changes = append(changes, msg)
					} else {
						warns = append(warns, msg)
					}
				}
				ob.Warn, ob.Mutation = harness.RuleIDs(warns...), harness.RuleIDs(changes...)
				if err != nil {
					ob.Denied, ob.Deny = true, harness.RuleIDs(err.Error())
				}
				got = append(got, fmt.Sprintf("%s/%s %+v", o.GVK.Kind, o.Name, ob))
				if sts, ok := obj.(*appsv1.StatefulSet); ok && err == nil {
					waitForCachedStatefulSet(t, c, sts)
				}
			}
			assert.Equal(t, got, want, "audit's decisions, object by object, against the apiserver's answers")
		})
	}
}

// waitForCachedStatefulSet waits until stsguard's cache has sts, seen as a
// dry-run create of its Service being made headless, when that Service
// does not exist yet (when it does, no later object of these tests reads
// the StatefulSet from the cache).
func waitForCachedStatefulSet(t *testing.T, c client.Client, sts *appsv1.StatefulSet) {
	t.Helper()
	var svc corev1.Service
	err := c.Get(context.Background(), client.ObjectKey{Namespace: sts.Namespace, Name: sts.Spec.ServiceName}, &svc)
	if !apierrors.IsNotFound(err) {
		require.NoError(t, err)
		return
	}
	harness.Eventually(t, "stsguard to see StatefulSet "+sts.Name, func() bool {
		probe := harness.Service(sts.Namespace, sts.Spec.ServiceName, "", sts.Spec.Template.Labels)
		return c.Create(context.Background(), probe, client.DryRunAll) == nil && probe.Spec.ClusterIP == corev1.ClusterIPNone
	})
}
