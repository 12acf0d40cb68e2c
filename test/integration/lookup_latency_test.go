package integration

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/certs"
	"github.com/stsguard/stsguard/lookup"
	"github.com/stsguard/stsguard/server"
	"github.com/stsguard/stsguard/test/harness"
)

// A StatefulSet whose governing Service does not exist must cost no more to
// write than one whose Service exists. Each write goes through the real
// apiserver and the stsguard webhooks (mutating and validating); the latency
// is the client's, end to end.
//
// The suite's stsguard gets envtest's admin configuration, whose client-side
// rate limit (QPS 1000, burst 2000) no cluster gives and would hide a queue
// behind the limiter. So
// these tests start a second stsguard configured as in a cluster, from a
// kubeconfig (client-go's defaults, QPS 5, burst 10), and send the
// namespaces they write in to it too (see productionServer).

// latencyLabel marks the namespaces whose writes go to productionServer.
const latencyLabel = "stsguard.io/latency-test"

// productionServer starts `stsguard serve` in-process from a kubeconfig, as
// it runs in a cluster, with webhook configurations of its own: the
// installed ones, their webhooks renamed latency.<name>, pointed at it and
// limited to namespaces labelled latencyLabel=<the returned value>. The
// suite's stsguard judges those namespaces as well, so a write there goes
// through both. It returns once the apiserver has called both its
// StatefulSet webhooks, and stops when tb ends.
func productionServer(tb testing.TB, c client.Client) string {
	tb.Helper()
	dir := tb.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(tb, cp.WriteKubeconfig(kubeconfig))
	webhookAddr, err := harness.FreeAddr()
	require.NoError(tb, err)
	probe, err := harness.FreeAddr()
	require.NoError(tb, err)
	certDir := filepath.Join(dir, "certs")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Options{
			Kubeconfig: kubeconfig, Host: "127.0.0.1", Port: harness.Port(webhookAddr),
			CertDir: certDir, DNSNames: []string{"127.0.0.1"},
			MetricsBindAddress: "0", HealthProbeBindAddress: probe,
			ShutdownDelay: ptr.To(time.Duration(0)),
		})
	}()
	tb.Cleanup(func() {
		cancel()
		assert.NoError(tb, <-done, "the production-configured stsguard")
	})
	require.NoError(tb, harness.WaitReady(ctx, probe, 60*time.Second))
	caPEM, err := os.ReadFile(filepath.Join(certDir, certs.CAFile))
	require.NoError(tb, err)

	id := "latency-" + rand.String(5)
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{latencyLabel: id}}
	point := func(w *admissionregistrationv1.WebhookClientConfig) {
		u, err := url.Parse(ptr.Deref(w.URL, ""))
		require.NoError(tb, err, "envtest points the installed webhooks at a URL")
		u.Host = webhookAddr
		w.URL, w.CABundle = ptr.To(u.String()), caPEM
	}
	var objs []client.Object
	for i, m := range cp.Webhook.MutatingWebhooks {
		cfg := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", id, i)}}
		cfg.Webhooks = m.DeepCopy().Webhooks
		for j := range cfg.Webhooks {
			w := &cfg.Webhooks[j]
			w.Name, w.NamespaceSelector = "latency."+w.Name, selector
			point(&w.ClientConfig)
		}
		objs = append(objs, cfg)
	}
	for i, v := range cp.Webhook.ValidatingWebhooks {
		cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", id, i)}}
		cfg.Webhooks = v.DeepCopy().Webhooks
		for j := range cfg.Webhooks {
			w := &cfg.Webhooks[j]
			w.Name, w.NamespaceSelector = "latency."+w.Name, selector
			point(&w.ClientConfig)
		}
		objs = append(objs, cfg)
	}
	for _, o := range objs {
		require.NoError(tb, c.Create(context.Background(), o))
		tb.Cleanup(func() { assert.NoError(tb, c.Delete(context.Background(), o)) })
	}

	// The apiserver loads webhook configurations from a watch: dry-run a
	// StatefulSet until its metrics show a call to both new webhooks.
	ns := latencyNamespace(tb, c, "latency-ready", id)
	apiserver, err := kubernetes.NewForConfig(cp.Config)
	require.NoError(tb, err)
	err = wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Create(ctx, latencyStatefulSet(ns, "probe", "probe"), client.DryRunAll); err != nil {
			return false, err
		}
		raw, err := apiserver.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
		if err != nil {
			return false, err
		}
		for _, name := range []string{"latency.statefulsets.mutate.stsguard.io", "latency.statefulsets.validate.stsguard.io"} {
			if !strings.Contains(string(raw), `apiserver_admission_webhook_admission_duration_seconds_count{name="`+name+`"`) {
				return false, nil
			}
		}
		return true, nil
	})
	require.NoError(tb, err, "the apiserver never called the production-configured stsguard")
	return id
}

// latencyPods are the pod labels of every StatefulSet these tests write; the
// present side's headless Service selects them.
var latencyPods = map[string]string{"app": "latency"}

// unlimitedClient returns an admin client without client-go's default
// client-side rate limit (QPS 5, burst 10), which would otherwise be what
// these tests measure.
func unlimitedClient(tb testing.TB) client.Client {
	tb.Helper()
	cfg := rest.CopyConfig(cp.Config)
	cfg.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	c, err := client.New(cfg, client.Options{})
	require.NoError(tb, err)
	return c
}

// latencyNamespace creates a fresh namespace for one measurement, whose
// writes go to the productionServer labelled id too.
func latencyNamespace(tb testing.TB, c client.Client, prefix, id string) string {
	tb.Helper()
	name := prefix + "-" + rand.String(5)
	require.NoError(tb, c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: name, Labels: map[string]string{latencyLabel: id},
	}}))
	return name
}

// latencyStatefulSet is harness.StatefulSet with the pod labels latencyPods, so that
// one headless Service matches every StatefulSet of the present side.
func latencyStatefulSet(ns, name, serviceName string) *appsv1.StatefulSet {
	sts := harness.StatefulSet(ns, name, serviceName, "nginx")
	sts.Spec.Selector.MatchLabels = latencyPods
	sts.Spec.Template.Labels = latencyPods
	return sts
}

// latencies are the durations of the writes of each side.
type latencies struct {
	present, missing []time.Duration
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// write makes write number i of worker w, on the side with its Service
// (missing false) or without.
type write func(ctx context.Context, w, i int, missing bool) error

// latencyScenario sets up the objects of one kind of write in a fresh
// namespace of productionServer id, for workers writers, and returns the
// write.
type latencyScenario func(tb testing.TB, c client.Client, id string, workers int) write

// updateScenario: an update of spec.replicas (2, 1, 2, ...: a merge patch,
// as kubectl scale would make through the main resource) of StatefulSet
// p-<w>, whose headless Service p-<w> exists, or of m-<w>, whose Service
// m-<w> does not. A label-only update would not do: the webhook
// configurations' matchCondition keeps it away from stsguard altogether.
func updateScenario(tb testing.TB, c client.Client, id string, workers int) write {
	tb.Helper()
	ctx := context.Background()
	ns := latencyNamespace(tb, c, "latency-update", id)
	for w := range workers {
		require.NoError(tb, c.Create(ctx, harness.Service(ns, fmt.Sprintf("p-%d", w), corev1.ClusterIPNone, latencyPods)))
		require.NoError(tb, c.Create(ctx, latencyStatefulSet(ns, fmt.Sprintf("p-%d", w), fmt.Sprintf("p-%d", w))))
		require.NoError(tb, c.Create(ctx, latencyStatefulSet(ns, fmt.Sprintf("m-%d", w), fmt.Sprintf("m-%d", w))))
	}
	return func(ctx context.Context, w, i int, missing bool) error {
		name := fmt.Sprintf("p-%d", w)
		if missing {
			name = fmt.Sprintf("m-%d", w)
		}
		patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, 2-i%2) // 2, 1, 2, ...: the StatefulSet was created with 3
		sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		return c.Patch(ctx, sts, client.RawPatch(types.MergePatchType, []byte(patch)))
	}
}

// createScenario: a CREATE of a new StatefulSet, either naming the headless
// Service p-<w>, which exists, or naming a Service of its own name, which
// does not: each create names another missing Service, the case a negative
// cache cannot answer.
func createScenario(tb testing.TB, c client.Client, id string, workers int) write {
	tb.Helper()
	ctx := context.Background()
	ns := latencyNamespace(tb, c, "latency-create", id)
	for w := range workers {
		require.NoError(tb, c.Create(ctx, harness.Service(ns, fmt.Sprintf("p-%d", w), corev1.ClusterIPNone, latencyPods)))
	}
	return func(ctx context.Context, w, i int, missing bool) error {
		if missing {
			name := fmt.Sprintf("m-%d-%d", w, i)
			return c.Create(ctx, latencyStatefulSet(ns, name, name))
		}
		return c.Create(ctx, latencyStatefulSet(ns, fmt.Sprintf("p-%d-%d", w, i), fmt.Sprintf("p-%d", w)))
	}
}

// measure runs pairs writes of each side on each of workers goroutines and
// returns their durations. Each goroutine alternates the sides, in an order
// that swaps every pair, so that whatever else loads the machine weighs on
// both sides alike; its first pair warms up and is not counted. It stops
// early, with what it has, when budget runs out: before the fix a write
// without its Service takes seconds, and the comparison of the medians of
// the writes made so far shows it.
func measure(tb testing.TB, workers, pairs int, budget time.Duration, do write) latencies {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	var (
		mu   sync.Mutex
		out  latencies
		errs []error
		wg   sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := 0; i <= pairs; i++ {
				for _, missing := range [][]bool{{false, true}, {true, false}}[i%2] {
					start := time.Now()
					err := do(ctx, w, i, missing)
					took := time.Since(start)
					if ctx.Err() != nil {
						return // budget spent; this write may have been cut short
					}
					mu.Lock()
					switch {
					case err != nil:
						errs = append(errs, fmt.Errorf("worker %d write %d (missing Service %v): %w", w, i, missing, err))
					case i == 0: // warm-up
					case missing:
						out.missing = append(out.missing, took)
					default:
						out.present = append(out.present, took)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	require.NoError(tb, errors.Join(errs...))
	if ctx.Err() != nil {
		tb.Logf("stopped after the budget of %s: %d of %d writes made on each side", budget, min(len(out.present), len(out.missing)), workers*pairs)
	}
	return out
}

// A write of a StatefulSet whose Service is missing costs no more API calls
// than one whose Service exists, sequentially and from 8 goroutines at
// once: an UPDATE reads nothing live once the negative cache has the name,
// and a CREATE that names a new missing Service reads it at most once per
// stsguard (two here). The defect this guards against made about six
// rate-limited GETs per write (a second per write sequentially, about
// 9.5 s under load). What a write costs in milliseconds is measured, not
// asserted, by BenchmarkLookupMissingService (see docs/operating.md).
func TestLookupMissingServiceCostsNoMoreThanPresent(t *testing.T) {
	c := unlimitedClient(t)
	id := productionServer(t, c)
	for _, tc := range []struct {
		name           string
		scenario       latencyScenario
		workers, pairs int
		budget         time.Duration
		// maxReads bounds the GETs of Services per write without its
		// Service, both stsguards together: 0 once the negative cache has
		// the name, 1 per stsguard for a name new to it (and a little for
		// the Services the other side just created). minReads is what a
		// CREATE must read at least (the suite's stsguard, not rate
		// limited, reads each new name once): it shows that the count is
		// the apiserver's.
		minReads, maxReads float64
	}{
		{"update/sequential", updateScenario, 1, 40, 20 * time.Second, 0, 0.25},
		{"update/8-concurrent", updateScenario, 8, 5, 30 * time.Second, 0, 0.5},
		{"create/sequential", createScenario, 1, 40, 20 * time.Second, 0.5, 2.5},
		{"create/8-concurrent", createScenario, 8, 5, 30 * time.Second, 0.5, 2.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			do := tc.scenario(t, c, id, tc.workers)
			before := serviceGets(t)
			l := measure(t, tc.workers, tc.pairs, tc.budget, do)
			reads := serviceGets(t) - before
			require.GreaterOrEqual(t, min(len(l.present), len(l.missing)), 5, "too few writes to compare")
			perWrite := reads / float64(len(l.missing))
			t.Logf("p50 with its Service %s, without %s (%d and %d writes); %.2f GETs of Services per write without it",
				ms(median(l.present)), ms(median(l.missing)), len(l.present), len(l.missing), perWrite)
			assert.LessOrEqual(t, perWrite, tc.maxReads, "GETs of Services (the apiserver's count) per write of a StatefulSet whose Service is missing")
			assert.GreaterOrEqual(t, perWrite, tc.minReads, "GETs of Services (the apiserver's count) per write of a StatefulSet whose Service is missing")
			assert.Equal(t, len(l.present)+len(l.missing), tc.workers*tc.pairs*2, "every write finished within the budget")
		})
	}
}

// serviceGets returns how many GETs of Services the apiserver has served
// (apiserver_request_total{verb="GET",resource="services"}), whoever sent
// them: in this test only stsguard reads Services.
func serviceGets(tb testing.TB) float64 {
	tb.Helper()
	return harness.Value(tb, harness.APIServerMetrics(cp.Config), "apiserver_request_total", map[string]string{"verb": "GET", "resource": "services"})
}

// cacheMisses returns stsguard_lookup_cache_misses_total with one of the
// answers, summed over kinds, answers and both stsguards (they share the
// process's registry, served by the suite's).
func cacheMisses(tb testing.TB, answers ...string) float64 {
	tb.Helper()
	var n float64
	for _, a := range answers {
		n += srv.Metric(tb, "stsguard_lookup_cache_misses_total", map[string]string{"answer": a})
	}
	return n
}

// BenchmarkLookupMissingService measures what
// TestLookupMissingServiceCostsNoMoreThanPresent asserts, for docs/operating.md:
// b.N writes on each side per goroutine, reported as p50 in milliseconds,
// with the live reads per write without its Service (both stsguards
// together, so at most 2 per write for these objects) and the reads the
// token bucket skipped.
//
//	go test ./test/integration -run '^$' -bench LookupMissingService -benchtime 40x
func BenchmarkLookupMissingService(b *testing.B) {
	c := unlimitedClient(b)
	id := productionServer(b, c)
	for _, bc := range []struct {
		name     string
		scenario latencyScenario
		workers  int
	}{
		{"update/sequential", updateScenario, 1},
		{"update/8-concurrent", updateScenario, 8},
		{"create/sequential", createScenario, 1},
		{"create/8-concurrent", createScenario, 8},
	} {
		b.Run(bc.name, func(b *testing.B) {
			do := bc.scenario(b, c, id, bc.workers)
			live := []string{lookup.AnswerLiveFound, lookup.AnswerLiveNotFound, lookup.AnswerLiveError}
			liveBefore, limitedBefore := cacheMisses(b, live...), cacheMisses(b, lookup.AnswerRateLimited)
			b.ResetTimer()
			l := measure(b, bc.workers, b.N, 10*time.Minute, do)
			b.StopTimer()
			perMissingWrite := func(n float64) float64 { return n / float64(max(1, len(l.missing))) }
			b.ReportMetric(float64(median(l.present).Microseconds())/1000, "p50-present-ms")
			b.ReportMetric(float64(median(l.missing).Microseconds())/1000, "p50-missing-ms")
			b.ReportMetric(perMissingWrite(cacheMisses(b, live...)-liveBefore), "live-reads/missing-write")
			b.ReportMetric(perMissingWrite(cacheMisses(b, lookup.AnswerRateLimited)-limitedBefore), "rate-limited/missing-write")
			b.ReportMetric(0, "ns/op")
		})
	}
}
