package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/credentials"
	"github.com/stsguard/stsguard/rules"
	"github.com/stsguard/stsguard/test/harness"
)

// literalPassword is the root password of examples/mysql-literal-password,
// which password-secret-ref moves into a Secret.
const literalPassword = "Vh3-literal-but-not-default"

// mysqlManifest returns examples/mysql-literal-password as kubectl reads it.
func mysqlManifest(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(harness.Root(), "examples", "mysql-literal-password", "mysql.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(b), literalPassword)
	return string(b)
}

// stored returns the StatefulSet mysql as `kubectl get -o json` prints it,
// managedFields and annotations included, and decoded.
func stored(t *testing.T, ns string) (string, *appsv1.StatefulSet) {
	t.Helper()
	res := mustKubectl(t, "", "-n", ns, "get", "statefulset/mysql", "-o", "json", "--show-managed-fields")
	sts := &appsv1.StatefulSet{}
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), sts))
	return res.Stdout, sts
}

// credentialSecrets returns the Secrets stsguard wrote in ns.
func credentialSecrets(t *testing.T, c client.Client, ns string) []corev1.Secret {
	t.Helper()
	list := &corev1.SecretList{}
	require.NoError(t, c.List(ctx(), list, client.InNamespace(ns), client.MatchingLabels{credentials.ManagedByLabel: credentials.ManagedByValue}))
	return list.Items
}

// assertMoved asserts that the stored StatefulSet references the Secret and
// holds no copy of the literal, anywhere (annotations and managedFields
// included).
func assertMoved(t *testing.T, ns string) *appsv1.StatefulSet {
	t.Helper()
	raw, sts := stored(t, ns)
	assert.NotContains(t, raw, literalPassword, "no copy of the moved password in the stored object")
	env := sts.Spec.Template.Spec.Containers[0].Env[0]
	require.NotNil(t, env.ValueFrom, "env %s", env.Name)
	assert.Equal(t, "mysql-credentials", env.ValueFrom.SecretKeyRef.Name)
	assert.Empty(t, env.Value)
	if la, ok := sts.Annotations[rules.LastAppliedAnnotation]; ok {
		assert.Contains(t, la, `"secretKeyRef":{"key":"mysql-root-password","name":"mysql-credentials"}`, "kubectl's last-applied says what the object says")
	}
	return sts
}

// Every way kubectl writes a manifest with a literal password ends with the
// password in a Secret and nowhere in the StatefulSet, and writing the same
// file again converges: no second Secret, no new pod template.
func TestMovedPasswordLeavesNoCopyWhateverKubectlDoes(t *testing.T) {
	manifest := mysqlManifest(t)
	cases := []struct {
		name          string
		first, second []string // kubectl arguments; -f - reads the manifest
		lastApplied   bool     // the stored object carries kubectl's annotation
	}{
		{"kubectl apply, twice", []string{"apply", "-f", "-"}, []string{"apply", "-f", "-"}, true},
		{"kubectl apply --server-side, twice", []string{"apply", "--server-side", "-f", "-"}, []string{"apply", "--server-side", "-f", "-"}, false},
		{"kubectl create, then replace", []string{"create", "-f", "-"}, []string{"replace", "-f", "-"}, false},
		{"kubectl create --save-config, then apply", []string{"create", "--save-config", "-f", "-"}, []string{"apply", "-f", "-"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newClient(t)
			ns := namespace(t, c)
			res := mustKubectl(t, manifest, append([]string{"-n", ns}, tc.first...)...)
			assert.Contains(t, res.Stdout, "statefulset.apps/mysql")
			assert.Contains(t, res.Stderr, "Warning: spec.template.spec.containers[0].env[0]: changed by stsguard: moved the literal value of MYSQL_ROOT_PASSWORD")
			assert.NotContains(t, res.Stdout+res.Stderr, literalPassword)
			sts := assertMoved(t, ns)
			_, hasLastApplied := sts.Annotations[rules.LastAppliedAnnotation]
			assert.Equal(t, tc.lastApplied, hasLastApplied)
			require.Len(t, credentialSecrets(t, c, ns), 1)
			before := waitRolledOut(t, c, ns, "mysql")

			res = mustKubectl(t, manifest, append([]string{"-n", ns}, tc.second...)...)
			assert.NotContains(t, res.Stdout+res.Stderr, literalPassword)
			again := assertMoved(t, ns)
			assert.Len(t, credentialSecrets(t, c, ns), 1, "the Secret is reused, not written twice")
			assert.Equal(t, before.Generation, again.Generation, "the spec did not change")
			after := waitRolledOut(t, c, ns, "mysql")
			assert.Equal(t, before.Status.UpdateRevision, after.Status.UpdateRevision, "no new pod template, no rollout")

			// kubectl diff sends the file as a server-side dry run: the webhook
			// moves the password there too, so nothing differs.
			diff := kubectl(t, manifest, "-n", ns, "diff", "-f", "-")
			assert.Equal(t, 0, diff.ExitCode, "kubectl diff finds no difference:\n%s%s", diff.Stdout, diff.Stderr)
			assert.NotContains(t, diff.Stdout, literalPassword)
			assert.NotContains(t, logs.String(), literalPassword, "nothing stsguard logged holds the password")
		})
	}
}

// A server-side dry run shows the object as it would be stored (the
// password moved) and writes nothing: no StatefulSet, no Secret.
func TestMovedPasswordDryRunWritesNothing(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	res := mustKubectl(t, mysqlManifest(t), "-n", ns, "apply", "--dry-run=server", "-f", "-", "-o", "yaml")
	assert.Contains(t, res.Stdout, "name: mysql-credentials")
	assert.NotContains(t, res.Stdout, literalPassword)
	assert.NotContains(t, res.Stderr, literalPassword)
	assert.Empty(t, credentialSecrets(t, c, ns))
	assert.NotContains(t, logs.String(), literalPassword, "nothing stsguard logged holds the password")
	err := c.Get(ctx(), types.NamespacedName{Namespace: ns, Name: "mysql"}, &appsv1.StatefulSet{})
	assert.True(t, client.IgnoreNotFound(err) == nil && err != nil, "no StatefulSet stored: %v", err)
}

// kubectl scale goes through statefulsets/scale, which stsguard judges as
// the change of spec.replicas it is.
func TestKubectlScaleIsJudged(t *testing.T) {
	c, _ := newClient(t)
	ns := namespace(t, c)
	sts := harness.StatefulSet(ns, "web", "", "nginx")
	sts.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: new(int32(2))}}
	require.NoError(t, c.Create(ctx(), sts))
	waitRolledOut(t, c, ns, "web")

	harness.Eventually(t, "the webhook to see statefulset/web", func() bool {
		res := kubectl(t, "", "-n", ns, "scale", "statefulset/web", "--replicas=1", "--dry-run=server")
		return strings.Contains(res.Stderr, "[rule: partition-exceeds-replicas]")
	})
	res := mustKubectl(t, "", "-n", ns, "scale", "statefulset/web", "--replicas=1")
	assert.Contains(t, res.Stdout, "statefulset.apps/web scaled")
	assert.Contains(t, res.Stderr, "Warning: spec.updateStrategy.rollingUpdate.partition")
	assert.Contains(t, res.Stderr, "[rule: partition-exceeds-replicas]")
	harness.Eventually(t, "web scaled to 1", func() bool { return len(podUIDs(t, c, ns)) == 1 }, 60*time.Second)

	res = mustKubectl(t, "", "-n", ns, "scale", "statefulset/web", "--replicas=4")
	assert.NotContains(t, res.Stderr, "partition-exceeds-replicas")
}
