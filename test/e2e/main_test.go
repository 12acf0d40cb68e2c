package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	"github.com/stsguard/stsguard/test/harness"
)

var (
	cl   *harness.Cluster
	srv  *harness.InProcess
	logs *harness.LogBuffer // everything stsguard logged, to check that no secret leaks
)

func TestMain(m *testing.M) {
	harness.Main(m, harness.WithLogs(&logs), harness.WithCluster(&cl), harness.WithServer(&srv))
}

// newClient returns an admin client and the recorder of its warnings.
func newClient(t *testing.T) (client.Client, *harness.Warnings) {
	t.Helper()
	c, w, err := harness.NewClient(cl.Config)
	require.NoError(t, err)
	return c, w
}

// namespace creates a fresh namespace for one test.
func namespace(t *testing.T, c client.Client) string { return harness.Namespace(t, c) }

// kubectl runs the real kubectl against the cluster as its admin.
func kubectl(t *testing.T, stdin string, args ...string) harness.KubectlResult {
	t.Helper()
	res, err := harness.RunKubectl(cl.Kubeconfig, stdin, args...)
	require.NoError(t, err)
	return res
}

// mustKubectl is kubectl that fails the test when kubectl fails.
func mustKubectl(t *testing.T, stdin string, args ...string) harness.KubectlResult {
	t.Helper()
	res := kubectl(t, stdin, args...)
	require.Equal(t, 0, res.ExitCode, "kubectl %v:\n%s%s", args, res.Stdout, res.Stderr)
	return res
}

func ctx() context.Context { return context.Background() }

// toYAML returns obj as a manifest for kubectl, with its apiVersion and
// kind filled in from client-go's scheme.
func toYAML(t *testing.T, obj client.Object) string {
	t.Helper()
	gvk, err := apiutil.GVKForObject(obj, clientgoscheme.Scheme)
	require.NoError(t, err)
	obj = obj.DeepCopyObject().(client.Object)
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	b, err := yaml.Marshal(obj)
	require.NoError(t, err)
	return string(b)
}
