package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/audit"
	"github.com/stsguard/stsguard/test/harness"
)

type config struct {
	stsguard, compare string
	sizes             []int
	namespaces        int
	secretBytes       int
	writes            int
	probeSecrets      int
	workers           int
	heapProfiles      string
	timeout           time.Duration
}

func main() {
	var c config
	var sizes string
	flag.StringVar(&c.stsguard, "stsguard", "bin/stsguard", "the stsguard binary to measure")
	flag.StringVar(&c.compare, "compare", "", "another stsguard binary whose cost per cached Secret is measured too (optional)")
	flag.StringVar(&sizes, "sizes", "1000,10000,50000", "cluster sizes N, in objects (a third each StatefulSets, Services, Secrets), increasing")
	flag.IntVar(&c.namespaces, "namespaces", 1000, "namespaces the objects are spread over")
	flag.IntVar(&c.secretBytes, "secret-bytes", 4096, "bytes of the value each Secret holds")
	flag.IntVar(&c.writes, "writes", 300, "StatefulSet CREATEs through the webhooks per size, one at a time")
	flag.IntVar(&c.probeSecrets, "probe-secrets", 3000, "Secrets added to measure what one cached Secret costs")
	flag.IntVar(&c.workers, "workers", 16, "concurrent clients filling the cluster")
	flag.StringVar(&c.heapProfiles, "heap-profiles", "", "save a heap profile of each server of the Secret measurement into this directory")
	flag.DurationVar(&c.timeout, "timeout", 90*time.Minute, "limit of the whole run")
	flag.Parse()
	if err := c.check(sizes); err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(1)
	}
}

func (c *config) check(sizes string) error {
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 3 || n > 500_000 {
			return fmt.Errorf("-sizes %q: want sizes of 3 to 500000 objects", sizes)
		}
		if len(c.sizes) > 0 && n <= c.sizes[len(c.sizes)-1] {
			return fmt.Errorf("-sizes %q: want increasing sizes", sizes)
		}
		c.sizes = append(c.sizes, n)
	}
	switch {
	case c.namespaces < 1 || c.namespaces > 10_000:
		return fmt.Errorf("-namespaces %d: want 1 to 10000", c.namespaces)
	case c.secretBytes < 1 || c.secretBytes > 512<<10:
		return fmt.Errorf("-secret-bytes %d: want 1 to 524288", c.secretBytes)
	case c.writes < 10 || c.writes > 100_000:
		return fmt.Errorf("-writes %d: want 10 to 100000", c.writes)
	case c.probeSecrets < 0 || c.probeSecrets > 100_000:
		return fmt.Errorf("-probe-secrets %d: want 0 to 100000", c.probeSecrets)
	case c.workers < 1 || c.workers > 256:
		return fmt.Errorf("-workers %d: want 1 to 256", c.workers)
	}
	for _, bin := range []*string{&c.stsguard, &c.compare} {
		if *bin == "" {
			continue
		}
		abs, err := filepath.Abs(*bin)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("%w (run make build)", err)
		}
		*bin = abs
	}
	return nil
}

// bench is one run: the control plane, a client, and what it measured.
type bench struct {
	c          config
	cp         *harness.ControlPlane
	cs         *kubernetes.Clientset
	dir        string
	kubeconfig string
	created    int // objects of the sizes created so far
}

func run(ctx context.Context, c config) error {
	load := loadavg()
	started := time.Now()
	cp, err := harness.Start()
	if err != nil {
		return err
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}()
	dir, err := os.MkdirTemp("", "bench-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &bench{c: c, cp: cp, dir: dir, kubeconfig: filepath.Join(dir, "kubeconfig")}
	if err := cp.WriteKubeconfig(b.kubeconfig); err != nil {
		return err
	}
	cfg := rest.CopyConfig(cp.Config)
	cfg.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	cfg.WarningHandlerWithContext = rest.NoWarnings{}
	if b.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if err := b.parallel(ctx, c.namespaces, func(ctx context.Context, i int) error {
		_, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName(i)}}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("creating namespaces: %w", err)
	}
	fmt.Fprintf(os.Stderr, "bench-scale: %d namespaces created\n", c.namespaces)

	perSecret, err := b.secretCost(ctx)
	if err != nil {
		return err
	}
	var rows []row
	for _, n := range c.sizes {
		if err := b.fill(ctx, n); err != nil {
			return err
		}
		r, err := b.measure(ctx, n)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench-scale: N=%d measured\n", n)
		rows = append(rows, r)
	}
	report(os.Stdout, c, perSecret, rows, load, loadavg(), time.Since(started))
	return nil
}

func nsName(i int) string { return fmt.Sprintf("scale-%04d", i) }

// parallel runs do(i) for i in [0, n) on c.workers goroutines, and returns
// the first error.
func (b *bench) parallel(ctx context.Context, n int, do func(ctx context.Context, i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range b.c.workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err := do(rctx, i)
				cancel()
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(n)) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// object i of the sizes: StatefulSet, Service and Secret in turn, in
// namespace i/3 modulo c.namespaces; the StatefulSet reads the password of
// the Secret and names the Service created with it.
func (b *bench) create(ctx context.Context, i int) error {
	ns, name := nsName((i/3)%b.c.namespaces), fmt.Sprintf("o-%06d", i/3)
	var err error
	switch i % 3 {
	case 0:
		_, err = b.cs.AppsV1().StatefulSets(ns).Create(ctx, statefulSet(ns, name, name), metav1.CreateOptions{})
	case 1:
		_, err = b.cs.CoreV1().Services(ns).Create(ctx, harness.Service(ns, name, corev1.ClusterIPNone, map[string]string{"app": name}), metav1.CreateOptions{})
	case 2:
		_, err = b.cs.CoreV1().Secrets(ns).Create(ctx, b.secret(ns, name), metav1.CreateOptions{})
	}
	return err
}

// statefulSet is harness.StatefulSet with one replica, naming Service peer
// (and labelled as it selects) and reading its MySQL root password from key
// "password" of Secret peer.
func statefulSet(ns, name, peer string) *appsv1.StatefulSet {
	sts := harness.StatefulSet(ns, name, peer, "mysql:8.4")
	sts.Spec.Replicas = ptr.To[int32](1)
	sts.Spec.Selector.MatchLabels = map[string]string{"app": peer} // as Service peer selects
	sts.Spec.Template.Labels = sts.Spec.Selector.MatchLabels
	sts.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MYSQL_ROOT_PASSWORD", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: peer}, Key: "password"}}}}
	return sts
}

// fill creates objects up to n.
func (b *bench) fill(ctx context.Context, n int) error {
	from := b.created
	start := time.Now()
	err := b.parallel(ctx, n-from, func(ctx context.Context, i int) error { return b.create(ctx, from+i) })
	if err != nil {
		return fmt.Errorf("filling the cluster to %d objects: %w", n, err)
	}
	b.created = n
	fmt.Fprintf(os.Stderr, "bench-scale: %d objects created in %s\n", n-from, time.Since(start).Round(time.Second))
	return nil
}

// secret is a Secret holding c.secretBytes of random hex under "password".
func (b *bench) secret(ns, name string) *corev1.Secret {
	raw := make([]byte, (b.c.secretBytes+1)/2)
	_, _ = rand.Read(raw)
	v := []byte(hex.EncodeToString(raw))[:b.c.secretBytes]
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"password": v}}
}

// serving is one stsguard serve process with what it cost to start.
type serving struct {
	srv       *harness.Serving
	pprofAddr string
	ready     time.Duration
}

func (b *bench) serve(bin, label string) (*serving, error) {
	pprofAddr, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	srv, err := harness.ServeBinary(b.cp, bin, b.kubeconfig, filepath.Join(b.dir, "serve-"+label+".log"), "--pprof-bind-address", pprofAddr)
	if err != nil {
		return nil, err
	}
	return &serving{srv: srv, pprofAddr: pprofAddr, ready: time.Since(start)}, nil
}

// liveHeap forces a garbage collection in s (the heap profile with gc=1)
// and returns its heap in use after it, in bytes.
func (s *serving) liveHeap(ctx context.Context) (float64, error) {
	if _, err := get(ctx, "http://"+s.pprofAddr+"/debug/pprof/heap?gc=1"); err != nil {
		return 0, err
	}
	m, err := s.metric(ctx, "go_memstats_heap_inuse_bytes")
	return m, err
}

// metric returns the sum of the samples of metric name on s's /metrics.
func (s *serving) metric(ctx context.Context, name string) (float64, error) {
	raw, err := get(ctx, "http://"+s.srv.MetricsAddr+"/metrics")
	if err != nil {
		return 0, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, m := range families[name].GetMetric() {
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		}
	}
	return sum, nil
}

func get(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}

// secretCost is what one cached Secret costs a binary: the live heap and
// RSS of a server before Secrets were added (sample 0), of the same server
// once it has them (1: the cluster grew while it ran), and of a server
// started after they were added (2: a restart, which lists them).
type secretCost struct {
	bin     string
	heap    [3]float64
	rss     [3]int64
	secrets int
}

func (s secretCost) heapPerSecret(i int) float64 {
	return (s.heap[i] - s.heap[0]) / float64(s.secrets)
}
func (s secretCost) rssPerSecret(i int) float64 {
	return float64(s.rss[i]-s.rss[0]) / float64(s.secrets)
}

// probeNamespace holds the Secrets of the measurement of one Secret's cost.
const probeNamespace = "scale-probe"

// sample returns s's live heap (after a forced GC) and RSS, saving a heap
// profile when asked to.
func (b *bench) sample(ctx context.Context, s *serving, label string) (float64, int64, error) {
	heap, err := s.liveHeap(ctx)
	if err != nil {
		return 0, 0, err
	}
	if b.c.heapProfiles != "" {
		raw, err := get(ctx, "http://"+s.pprofAddr+"/debug/pprof/heap")
		if err != nil {
			return 0, 0, err
		}
		if err := os.WriteFile(filepath.Join(b.c.heapProfiles, label+".pprof"), raw, 0o644); err != nil {
			return 0, 0, err
		}
	}
	rss, _, err := harness.ProcMemory(s.srv.Pid())
	return heap, rss, err
}

// secretCost measures, for c.stsguard and c.compare, what c.probeSecrets
// Secrets added to the cluster cost a server that runs meanwhile and one
// started after, then deletes them.
func (b *bench) secretCost(ctx context.Context) ([]secretCost, error) {
	if b.c.probeSecrets == 0 {
		return nil, nil
	}
	bins := []string{b.c.stsguard}
	if b.c.compare != "" {
		bins = append(bins, b.c.compare)
	}
	if _, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probeNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	out := make([]secretCost, len(bins))
	for i, bin := range bins { // one at a time: they serve on the same port
		out[i] = secretCost{bin: bin, secrets: b.c.probeSecrets}
		if err := b.probe(ctx, &out[i], fmt.Sprintf("probe-%d", i)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// probe measures one binary's secretCost.
func (b *bench) probe(ctx context.Context, out *secretCost, label string) error {
	running, err := b.serve(out.bin, label+"-running")
	if err != nil {
		return err
	}
	defer running.srv.Stop()
	if out.heap[0], out.rss[0], err = b.sample(ctx, running, label+"-0"); err != nil {
		return err
	}
	if err := b.parallel(ctx, b.c.probeSecrets, func(ctx context.Context, i int) error {
		_, err := b.cs.CoreV1().Secrets(probeNamespace).Create(ctx, b.secret(probeNamespace, fmt.Sprintf("p-%06d", i)), metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("creating the probe Secrets: %w", err)
	}
	// The watch delivers the Secrets within moments of their creation:
	// sample until the live heap stops growing (two samples within 1%), at
	// most 30 times a second apart.
	prev := -1.0
	for range 30 {
		if out.heap[1], out.rss[1], err = b.sample(ctx, running, label+"-1"); err != nil {
			return err
		}
		if prev > 0 && out.heap[1] < prev*1.01 {
			break
		}
		prev = out.heap[1]
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	_ = running.srv.Stop()
	fresh, err := b.serve(out.bin, label+"-fresh")
	if err != nil {
		return err
	}
	out.heap[2], out.rss[2], err = b.sample(ctx, fresh, label+"-2")
	_ = fresh.srv.Stop()
	if err != nil {
		return err
	}
	if err := b.cs.CoreV1().Secrets(probeNamespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return fmt.Errorf("deleting the probe Secrets: %w", err)
	}
	return nil
}

// row is what one size N costs.
type row struct {
	n                    int
	ready                time.Duration
	rssReady, rssAfter   int64
	rssPeak              int64
	liveHeap             float64
	p50, p99             time.Duration
	cpuPerReview         float64 // seconds
	reviews              float64
	auditWall            time.Duration
	auditPeak            int64   // bytes
	auditLive            float64 // bytes: the largest heap live after a GC (gctrace)
	cpuReady             float64 // seconds of CPU to ready
	auditObjects, denied int
}

// measure starts a server on the cluster of n objects and measures it, then
// audits the cluster.
func (b *bench) measure(ctx context.Context, n int) (row, error) {
	r := row{n: n}
	s, err := b.serve(b.c.stsguard, fmt.Sprint(n))
	if err != nil {
		return r, err
	}
	defer s.srv.Stop()
	r.ready = s.ready
	if r.cpuReady, err = harness.ProcCPUSeconds(s.srv.Pid()); err != nil {
		return r, err
	}
	if r.rssReady, _, err = harness.ProcMemory(s.srv.Pid()); err != nil {
		return r, err
	}
	if err := b.writes(ctx, s, n, &r); err != nil {
		return r, err
	}
	if r.liveHeap, err = s.liveHeap(ctx); err != nil {
		return r, err
	}
	if r.rssAfter, r.rssPeak, err = harness.ProcMemory(s.srv.Pid()); err != nil {
		return r, err
	}
	if err := s.srv.Exited(); err != nil {
		return r, fmt.Errorf("%w (log: %s)", err, s.srv.Log)
	}
	_ = s.srv.Stop()
	return r, b.audit(ctx, &r)
}

// writes creates c.writes StatefulSets one at a time in a namespace of
// their own (with the Service and Secret they read), through the webhooks.
func (b *bench) writes(ctx context.Context, s *serving, n int, r *row) error {
	ns := fmt.Sprintf("scale-writes-%d", n)
	if _, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := b.cs.CoreV1().Services(ns).Create(ctx, harness.Service(ns, "db", corev1.ClusterIPNone, map[string]string{"app": "db"}), metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := b.cs.CoreV1().Secrets(ns).Create(ctx, b.secret(ns, "db"), metav1.CreateOptions{}); err != nil {
		return err
	}
	cpu0, err := harness.ProcCPUSeconds(s.srv.Pid())
	if err != nil {
		return err
	}
	rev0, err := s.metric(ctx, "controller_runtime_webhook_requests_total")
	if err != nil {
		return err
	}
	lat := make([]time.Duration, 0, b.c.writes)
	for i := range b.c.writes {
		sts := statefulSet(ns, fmt.Sprintf("w-%06d", i), "db")
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		start := time.Now()
		_, err := b.cs.AppsV1().StatefulSets(ns).Create(wctx, sts, metav1.CreateOptions{})
		lat = append(lat, time.Since(start))
		cancel()
		if err != nil {
			return fmt.Errorf("StatefulSet CREATE %d: %w", i, err)
		}
	}
	cpu1, err := harness.ProcCPUSeconds(s.srv.Pid())
	if err != nil {
		return err
	}
	rev1, err := s.metric(ctx, "controller_runtime_webhook_requests_total")
	if err != nil {
		return err
	}
	slices.Sort(lat)
	r.p50, r.p99 = percentile(lat, 0.50), percentile(lat, 0.99)
	r.reviews = rev1 - rev0
	if r.reviews > 0 {
		r.cpuPerReview = (cpu1 - cpu0) / r.reviews
	}
	return nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

// audit runs stsguard audit --cluster -o json and records its wall time and
// peak RSS.
func (b *bench) audit(ctx context.Context, r *row) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.c.stsguard, "audit", "--cluster", "--kubeconfig", b.kubeconfig, "-o", "json")
	// gctrace prints the heap live after each collection on stderr.
	cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	start := time.Now()
	err := cmd.Run()
	r.auditWall = time.Since(start)
	if cmd.ProcessState == nil {
		return fmt.Errorf("stsguard audit --cluster: %w", err)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 && code != 1 { // 1: something would be denied
		return fmt.Errorf("stsguard audit --cluster exited %d: %s", code, stderr.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.auditPeak = ru.Maxrss << 10 // KiB on Linux
	}
	var rep struct {
		Summary audit.Summary `json:"summary"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return fmt.Errorf("stsguard audit --cluster: reading its report: %w", err)
	}
	r.auditObjects, r.denied = rep.Summary.Objects, rep.Summary.Denied
	r.auditLive = maxLiveHeap(stderr.String())
	return nil
}

// maxLiveHeap returns the largest heap live after a collection that
// GODEBUG=gctrace=1 printed ("gc 7 @0.5s 3%: ... 40->42->21 MB, ..."), in
// bytes.
func maxLiveHeap(trace string) float64 {
	var top float64
	for _, line := range strings.Split(trace, "\n") {
		_, rest, ok := strings.Cut(line, "->")
		if !strings.HasPrefix(line, "gc ") || !ok {
			continue
		}
		_, live, ok := strings.Cut(rest, "->")
		if !ok {
			continue
		}
		mb, err := strconv.ParseFloat(strings.Fields(live)[0], 64)
		if err == nil {
			top = max(top, mb*(1<<20))
		}
	}
	return top
}

// loadavg returns the 1, 5 and 15 minute load averages of the machine.
func loadavg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
