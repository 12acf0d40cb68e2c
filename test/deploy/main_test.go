package deploy

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/stsguard/stsguard/server"
	"github.com/stsguard/stsguard/test/harness"
)

// cp is the control plane of this package: kube-apiserver and etcd with
// the webhook configurations of deploy/base installed by envtest (pointing
// at a local port, where a test starts stsguard when it needs it).
var (
	cp   *harness.ControlPlane
	logs *harness.LogBuffer
)

// serviceAccount is the user stsguard runs as in deploy/base.
const serviceAccount = "system:serviceaccount:stsguard-system:stsguard"

func TestMain(m *testing.M) {
	harness.Main(m, harness.WithLogs(&logs), harness.WithControlPlane(&cp))
}

// admin returns a client for the envtest admin and the recorder of its
// warnings.
func admin(t *testing.T) (client.Client, *harness.Warnings) {
	t.Helper()
	c, w, err := harness.NewClient(cp.Config)
	require.NoError(t, err)
	return c, w
}

// asServiceAccount returns cp's configuration impersonating stsguard's
// ServiceAccount, so RBAC judges every call as it would in the cluster.
func asServiceAccount() *rest.Config {
	c := rest.CopyConfig(cp.Config)
	c.Impersonate = rest.ImpersonationConfig{
		UserName: serviceAccount,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:stsguard-system", "system:authenticated"},
	}
	return c
}

// installed holds the API warnings each object install created got, by
// "*Type/name".
var (
	installedMu sync.Mutex
	installed   = map[string][]string{}
)

// install creates the objects of `kubectl kustomize deploy/<overlay>` that
// are not there yet, except the webhook configurations (envtest installed
// the base's, pointing at the local port), and returns the API warnings
// every object any install created got, by "*Type/name".
func install(t *testing.T, overlay string) map[string][]string {
	t.Helper()
	installedMu.Lock()
	defer installedMu.Unlock()
	c, w := admin(t)
	r := render(t, overlay)
	got := installed
	// The Namespace first, so that its Pod Security labels judge the rest.
	var objs []client.Object
	for _, o := range r.objs {
		if _, ns := o.(*corev1.Namespace); ns {
			objs = append([]client.Object{o}, objs...)
		} else {
			objs = append(objs, o)
		}
	}
	for _, o := range objs {
		switch o.(type) {
		case *admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration:
			continue
		}
		w.Take()
		err := c.Create(context.Background(), o)
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		require.NoError(t, err, "%T %s", o, o.GetName())
		got[fmt.Sprintf("%T/%s", o, o.GetName())] = w.Take()
	}
	return got
}

// serve runs stsguard serve in-process on the port the webhook
// configurations call, until the test ends, and waits until it is ready.
func serve(t *testing.T, o server.Options) {
	t.Helper()
	probe, err := harness.FreeAddr()
	require.NoError(t, err)
	o.Host, o.Port = cp.Webhook.LocalServingHost, cp.Webhook.LocalServingPort
	o.HealthProbeBindAddress, o.MetricsBindAddress = probe, "0"
	if o.ShutdownDelay == nil {
		o.ShutdownDelay = ptr.To(time.Duration(0)) // no call to drain when a test stops it
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.NoError(t, harness.WaitReady(ctx, probe, 60*time.Second))
}

// setWebhooks applies f to every webhook of both configurations, and
// restores them when the test ends.
func setWebhooks(t *testing.T, f func(*admissionregistrationv1.WebhookClientConfig, **admissionregistrationv1.FailurePolicyType)) {
	t.Helper()
	c, _ := admin(t)
	ctx := context.Background()
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "stsguard"}, mwc))
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "stsguard"}, vwc))
	origM, origV := mwc.DeepCopy(), vwc.DeepCopy()
	for i := range mwc.Webhooks {
		f(&mwc.Webhooks[i].ClientConfig, &mwc.Webhooks[i].FailurePolicy)
	}
	for i := range vwc.Webhooks {
		f(&vwc.Webhooks[i].ClientConfig, &vwc.Webhooks[i].FailurePolicy)
	}
	require.NoError(t, c.Update(ctx, mwc))
	require.NoError(t, c.Update(ctx, vwc))
	t.Cleanup(func() {
		for _, restore := range []client.Object{origM, origV} {
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				cur := restore.DeepCopyObject().(client.Object)
				if err := c.Get(ctx, client.ObjectKeyFromObject(restore), cur); err != nil {
					return err
				}
				restore.SetResourceVersion(cur.GetResourceVersion())
				return c.Update(ctx, restore)
			})
			require.NoError(t, err)
		}
	})
}

func failurePolicy(p admissionregistrationv1.FailurePolicyType) func(*admissionregistrationv1.WebhookClientConfig, **admissionregistrationv1.FailurePolicyType) {
	return func(_ *admissionregistrationv1.WebhookClientConfig, fp **admissionregistrationv1.FailurePolicyType) {
		*fp = &p
	}
}

// eventually is harness.Eventually with this package's 30 s limit.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	harness.Eventually(t, what, cond, 30*time.Second)
}

// sample returns the sum of the counters and gauges named name whose label
// has value, in controller-runtime's registry (where stsguard registers
// its metrics in-process); 0 when there are none.
func sample(t *testing.T, name, label, value string) float64 {
	t.Helper()
	return harness.Value(t, metrics.Registry, name, map[string]string{label: value})
}
