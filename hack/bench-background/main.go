package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stsguard/stsguard/test/harness"
)

func main() {
	bin := flag.String("stsguard", "bin/stsguard", "the stsguard binary")
	n := flag.Int("n", 10000, "objects (bench/gen -n)")
	changes := flag.Int("changes", 300, "StatefulSets changed for the CPU per change")
	qps := flag.Float64("qps", 0, "--background-audit-qps (0: stsguard's default)")
	flag.StringVar(&profile, "profile", "", "write a CPU profile of stsguard serve during the audited run's first report to this file")
	flag.Parse()
	if err := run(*bin, *n, *changes, *qps); err != nil {
		fmt.Fprintln(os.Stderr, "bench-background:", err)
		os.Exit(1)
	}
}

// profile is where the CPU profile goes ("": none).
var profile string

type stats struct {
	ready, firstReport, scan time.Duration
	reportCPU                float64 // s
	rss, heap                float64 // bytes
	cpuPerChange             float64 // s
	reports                  int
}

func run(bin string, n, changes int, qps float64) error {
	// The local cluster, with room for bench/gen's ClusterIP Services and
	// without the StatefulSet controller: 10,000 pods would measure the
	// scheduler and the simulated nodes, not stsguard.
	cl, err := harness.StartClusterWith(harness.ClusterOptions{
		APIServerFlags:         map[string]string{"service-cluster-ip-range": "10.96.0.0/16"},
		ControllerManagerFlags: map[string]string{"controllers": "*,-statefulset-controller"},
	})
	if err != nil {
		return err
	}
	defer cl.Stop()
	cp, kubeconfig := cl.ControlPlane, cl.Kubeconfig
	dir, err := os.MkdirTemp("", "bench-background-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS, cfg.Burst = 500, 1000
	c, _, err := harness.NewClient(cfg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if _, err := envtest.InstallCRDs(cp.Config, envtest.CRDInstallOptions{Paths: []string{
		filepath.Join(harness.Root(), "charts", "stsguard", "files", "crds", "wgpolicyk8s.io_policyreports.yaml")}}); err != nil {
		return err
	}
	objs, err := generate(n)
	if err != nil {
		return err
	}
	start := time.Now()
	namespaces, err := create(ctx, c, objs)
	if err != nil {
		return err
	}
	fmt.Printf("created %d objects in %d namespaces in %s (stsguard not running: admitted unchecked)\n", len(objs), len(namespaces), time.Since(start).Round(time.Second))
	// The changes measured must cost the audit only: without the webhook
	// configurations, the apiserver sends stsguard no review.
	if err := c.DeleteAllOf(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{}); err != nil {
		return err
	}
	if err := c.DeleteAllOf(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{}); err != nil {
		return err
	}

	var sts []client.ObjectKey
	for _, o := range objs {
		if _, ok := o.(*appsv1.StatefulSet); ok && len(sts) < changes {
			sts = append(sts, client.ObjectKeyFromObject(o))
		}
	}
	off, err := measure(ctx, cp, c, bin, kubeconfig, dir, false, qps, sts, 0)
	if err != nil {
		return fmt.Errorf("without the audit: %w", err)
	}
	on, err := measure(ctx, cp, c, bin, kubeconfig, dir, true, qps, sts, len(namespaces))
	if err != nil {
		return fmt.Errorf("with the audit: %w", err)
	}
	mib := func(b float64) string { return fmt.Sprintf("%.0f MiB", b/(1<<20)) }
	fmt.Printf("\n%d objects, %d namespaces, %d changes\n", len(objs), len(namespaces), len(sts))
	fmt.Printf("| | without the audit | with the audit | added |\n| --- | --- | --- | --- |\n")
	fmt.Printf("| ready (cache synced) after | %s | %s | |\n", off.ready.Round(10*time.Millisecond), on.ready.Round(10*time.Millisecond))
	fmt.Printf("| first full report after | | %s (scan %s; %d reports) | |\n", on.firstReport.Round(100*time.Millisecond), on.scan.Round(10*time.Millisecond), on.reports)
	fmt.Printf("| CPU from ready to the first full report | %.2f s | %.2f s | %.2f s |\n", off.reportCPU, on.reportCPU, on.reportCPU-off.reportCPU)
	fmt.Printf("| RSS after it | %s | %s | %s |\n", mib(off.rss), mib(on.rss), mib(on.rss-off.rss))
	fmt.Printf("| Go heap in use after it | %s | %s | %s |\n", mib(off.heap), mib(on.heap), mib(on.heap-off.heap))
	fmt.Printf("| CPU per StatefulSet change | %.0f µs | %.0f µs | %.0f µs |\n", off.cpuPerChange*1e6, on.cpuPerChange*1e6, (on.cpuPerChange-off.cpuPerChange)*1e6)
	return nil
}

// generate returns bench/gen's objects.
func generate(n int) ([]client.Object, error) {
	cmd := exec.Command("go", "run", "./bench/gen", "-n", fmt.Sprint(n))
	cmd.Dir = harness.Root()
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("bench/gen: %w", err)
	}
	return harness.Decode(bytes.NewReader(out))
}

// create creates the namespaces of objs, then objs, with 16 writers; it
// returns the namespaces.
func create(ctx context.Context, c client.Client, objs []client.Object) ([]string, error) {
	seen := map[string]bool{}
	var namespaces []string
	for _, o := range objs {
		if ns := o.GetNamespace(); ns != "" && !seen[ns] {
			seen[ns] = true
			namespaces = append(namespaces, ns)
			if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
				return nil, err
			}
		}
	}
	work := make(chan client.Object)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for o := range work {
				if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s %s/%s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetNamespace(), o.GetName(), err))
					mu.Unlock()
				}
			}
		})
	}
	for _, o := range objs {
		work <- o
	}
	close(work)
	wg.Wait()
	return namespaces, errors.Join(errs...)
}

// measure runs stsguard serve (with the audit or without), and measures it.
func measure(ctx context.Context, cp *harness.ControlPlane, c client.Client, bin, kubeconfig, dir string, audit bool, qps float64, sts []client.ObjectKey, namespaces int) (stats, error) {
	var s stats
	var err error
	args := []string{"--leader-election-namespace=default", fmt.Sprintf("--background-audit=%t", audit)}
	if qps > 0 {
		args = append(args, fmt.Sprintf("--background-audit-qps=%g", qps))
	}
	pprof := ""
	if audit && profile != "" {
		if pprof, err = harness.FreeAddr(); err != nil {
			return s, err
		}
		args = append(args, "--pprof-bind-address="+pprof)
	}
	// Reports from an earlier run would be left as they are, not written.
	if err := deleteAll(ctx, c); err != nil {
		return s, err
	}
	start := time.Now()
	srv, err := harness.ServeBinary(cp, bin, kubeconfig, filepath.Join(dir, fmt.Sprintf("serve-%t.log", audit)), args...)
	if err != nil {
		return s, err
	}
	defer srv.Stop()
	s.ready = time.Since(start)
	proc, err := procfs.NewProc(srv.Pid())
	if err != nil {
		return s, err
	}
	cpu := func() float64 {
		st, err := proc.Stat()
		if err != nil {
			return 0
		}
		return st.CPUTime()
	}
	metrics := harness.MetricsEndpoint("http://" + srv.MetricsAddr + "/metrics")
	value := func(name string) float64 { return gauge(metrics, name) }
	cpuReady := cpu()
	if pprof != "" {
		go fetchProfile("http://"+pprof+"/debug/pprof/profile?seconds=30", profile)
	}
	poll := func(what string, timeout time.Duration, cond func() bool) error {
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, timeout, true, func(context.Context) (bool, error) { return cond(), nil })
		if err != nil {
			return fmt.Errorf("waiting for %s: %w (log: %s)", what, err, srv.Log)
		}
		return nil
	}
	// Progress is read from the apiserver (the reports), not from
	// stsguard's /metrics: a scrape costs stsguard CPU (gzip) that would
	// count as the audit's.
	if audit {
		if err := poll("the first full report", 10*time.Minute, func() bool { return reports(ctx, c) >= namespaces }); err != nil {
			return s, err
		}
		s.firstReport = time.Since(start)
	} else {
		// As long as the audited run takes to report, idle.
		if err := poll("40 s", time.Minute, func() bool { return time.Since(start) > 40*time.Second }); err != nil {
			return s, err
		}
	}
	s.reportCPU = cpu() - cpuReady
	st, err := proc.Stat()
	if err != nil {
		return s, err
	}
	s.rss = float64(st.ResidentMemory())
	s.heap = value("go_memstats_heap_inuse_bytes")
	if audit {
		s.scan = time.Duration(value("stsguard_background_audit_last_scan_duration_seconds") * float64(time.Second))
		s.reports = int(value("stsguard_background_audit_report_writes_total"))
	}

	// Changes: each StatefulSet's pod template annotated (a new generation).
	judged := value("stsguard_background_audit_judgments_total")
	before := cpu()
	var t0 time.Time
	for i, k := range sts {
		var obj appsv1.StatefulSet
		if err := c.Get(ctx, k, &obj); err != nil {
			return s, err
		}
		if obj.Spec.Template.Annotations == nil {
			obj.Spec.Template.Annotations = map[string]string{}
		}
		obj.Spec.Template.Annotations["bench/change"] = fmt.Sprintf("%d-%t", i, audit)
		if err := c.Update(ctx, &obj); err != nil {
			return s, err
		}
		t0 = time.Now()
	}
	// Both runs are measured until 5 s after the last change: its event
	// reaches the informer within milliseconds, and the audit judges 500
	// objects a second.
	if err := poll("5 s after the last change", time.Minute, func() bool { return time.Since(t0) > 5*time.Second }); err != nil {
		return s, err
	}
	s.cpuPerChange = (cpu() - before) / float64(len(sts))
	// Each change re-judged the StatefulSet, its Service and its Secret.
	if got := value("stsguard_background_audit_judgments_total") - judged; audit && got < float64(3*len(sts)) {
		return s, fmt.Errorf("%g judgments after %d changes, want %d (log: %s)", got, len(sts), 3*len(sts), srv.Log)
	}
	return s, nil
}

// reports counts the PolicyReports.
func reports(ctx context.Context, c client.Client) int {
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion("wgpolicyk8s.io/v1alpha2")
	list.SetKind("PolicyReportList")
	if err := c.List(ctx, list); err != nil {
		return 0
	}
	return len(list.Items)
}

// deleteAll deletes every PolicyReport, namespace by namespace.
func deleteAll(ctx context.Context, c client.Client) error {
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion("wgpolicyk8s.io/v1alpha2")
	list.SetKind("PolicyReportList")
	if err := c.List(ctx, list); err != nil {
		return err
	}
	for i := range list.Items {
		if err := c.Delete(ctx, &list.Items[i]); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// gauge is the sum of the series of metric name gathered from g; 0 when
// there is none or g cannot be read.
func gauge(g prometheus.Gatherer, name string) float64 {
	families, err := g.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return sum
}

// fetchProfile writes the CPU profile at url to path, or says why not.
func fetchProfile(url, path string) {
	resp, err := http.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
	}
}
