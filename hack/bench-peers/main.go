package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/stsguard/stsguard/test/harness"
)

// sideLabel is the namespace label whose value names the side (the webhook)
// that judges the writes in the namespace.
const sideLabel = "bench.stsguard.io/webhook"

// headlessService is the Service every benchmark StatefulSet names, in
// every side's namespace, so that stsguard's and Kyverno's lookups find it.
const headlessService = "bench-hl"

// podLabels are the pod template labels of the benchmark StatefulSets,
// selected by headlessService.
var podLabels = map[string]string{"app": "bench"}

// A side is one way the writes are judged.
type side struct {
	name      string // none, noop, stsguard, kyverno
	namespace string
	pid       int // the webhook's process; 0 for none
}

type config struct {
	n, workers, rounds, warmup int
	stsguard, noop, kyverno    string
	kyvernoCRDs, policies      string
	kubeScore                  string
	decisions, logs            string
	hold                       bool
	timeout                    time.Duration
}

func main() {
	var c config
	flag.IntVar(&c.n, "n", 500, "writes per case and side")
	flag.IntVar(&c.workers, "workers", 8, "concurrent clients of the Secret CREATE throughput")
	flag.IntVar(&c.rounds, "rounds", 5, "rounds each case is split into; each visits every side, in a rotated order")
	flag.IntVar(&c.warmup, "warmup", 30, "unmeasured writes per kind and side before measuring")
	flag.StringVar(&c.stsguard, "stsguard", "bin/stsguard", "the stsguard binary")
	flag.StringVar(&c.noop, "noop", "bin/peers/noop-webhook", "the no-op webhook binary (go build ./hack/bench-peers/noop)")
	flag.StringVar(&c.kyverno, "kyverno", "bin/peers/kyverno", "Kyverno's admission controller binary (hack/peers/build.sh); the Kyverno side is left out when it is missing")
	flag.StringVar(&c.kyvernoCRDs, "kyverno-crds", "bin/peers/src/kyverno-v1.19.1/config/crds", "the config/crds directory of Kyverno's module")
	flag.StringVar(&c.policies, "policies", "bench/peers/kyverno", "the directory of the Kyverno policies")
	flag.StringVar(&c.kubeScore, "kube-score", "bin/peers/kube-score", "kube-score, for the decisions table")
	flag.StringVar(&c.decisions, "decisions", "", "write the decisions table of examples/ and test/testdata/rules into this directory (decisions.md)")
	flag.StringVar(&c.logs, "logs", "", "keep the webhooks' logs and the kubeconfig in this directory (default: a temporary one, removed at exit)")
	flag.BoolVar(&c.hold, "hold", false, "once every side runs, print the kubeconfig and wait for Ctrl-C instead of measuring (to try the policies with kubectl)")
	flag.DurationVar(&c.timeout, "timeout", 40*time.Minute, "limit of the whole run")
	flag.Parse()
	if err := c.check(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-peers:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bench-peers:", err)
		os.Exit(1)
	}
}

func (c *config) check() error {
	switch {
	case c.n < 10 || c.n > 100_000:
		return fmt.Errorf("-n %d: want 10 to 100000", c.n)
	case c.workers < 1 || c.workers > 256:
		return fmt.Errorf("-workers %d: want 1 to 256", c.workers)
	case c.rounds < 1 || c.rounds > c.n:
		return fmt.Errorf("-rounds %d: want 1 to -n", c.rounds)
	case c.warmup < 0 || c.warmup > 10_000:
		return fmt.Errorf("-warmup %d: want 0 to 10000", c.warmup)
	}
	for _, p := range []*string{&c.stsguard, &c.noop} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("%w (make bench-peers builds it)", err)
		}
		*p = abs
	}
	for _, p := range []*string{&c.kyverno, &c.kyvernoCRDs, &c.policies, &c.kubeScore} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	if _, err := os.Stat(c.kyverno); err != nil {
		fmt.Fprintf(os.Stderr, "bench-peers: no Kyverno (%v): the Kyverno side is left out; hack/peers/build.sh kyverno builds it\n", err)
		c.kyverno = ""
	}
	return nil
}

func run(ctx context.Context, c config) error {
	loadBefore := loadavg()
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
	dir := c.logs
	if dir == "" {
		if dir, err = os.MkdirTemp("", "bench-peers-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Each webhook runs from a copy, as an install would leave it: a binary
	// the Go linker has just written sits in the page cache in large
	// folios, and running it straight away maps more of it (docs/speed.md).
	for _, bin := range []*string{&c.stsguard, &c.noop, &c.kyverno} {
		if *bin == "" {
			continue
		}
		if *bin, err = installCopy(*bin, dir); err != nil {
			return err
		}
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := cp.WriteKubeconfig(kubeconfig); err != nil {
		return err
	}
	cs, err := newClientset(cp.Config)
	if err != nil {
		return err
	}

	sides := []*side{{name: "none"}, {name: "noop"}, {name: "stsguard"}}
	if c.kyverno != "" {
		sides = append(sides, &side{name: "kyverno"})
	}
	for _, s := range sides {
		s.namespace = "peers-" + s.name
		if err := createNamespace(ctx, cs, s.namespace, s.name); err != nil {
			return err
		}
		svc := harness.Service(s.namespace, headlessService, corev1.ClusterIPNone, podLabels)
		if _, err := cs.CoreV1().Services(s.namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating Service %s/%s: %w", s.namespace, headlessService, err)
		}
	}

	// stsguard: deploy/base's webhooks, as envtest installed them, narrowed
	// to its side; the no-op webhook: the same webhooks on another port.
	noopAddr, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	paths, err := webhookSides(ctx, cs, noopAddr)
	if err != nil {
		return err
	}
	srv, err := harness.ServeBinary(cp, c.stsguard, kubeconfig, filepath.Join(dir, "stsguard.log"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	sides[2].pid = srv.Pid()
	noop, err := startNoop(ctx, c.noop, cp.Webhook.LocalServingCertDir, noopAddr, paths, filepath.Join(dir, "noop.log"))
	if err != nil {
		return err
	}
	defer noop.stop()
	sides[1].pid = noop.pid()

	var ky *process
	if c.kyverno != "" {
		ky, err = startKyverno(ctx, c, cp.Config, kubeconfig, dir)
		if err != nil {
			return err
		}
		defer ky.stop()
		sides[3].pid = ky.pid()
	}
	for _, s := range sides[1:] {
		if err := waitJudged(ctx, cs, s, noop); err != nil {
			return err
		}
	}

	if err := checkIsolation(ctx, cs, sides); err != nil {
		return err
	}
	if c.hold {
		fmt.Printf("every side runs; namespaces peers-none, peers-noop, peers-stsguard, peers-kyverno; logs in %s\nexport KUBECONFIG=%s\nCtrl-C stops\n", dir, kubeconfig)
		<-ctx.Done()
		return nil
	}
	b := &bench{c: c, cs: cs, sides: sides, stats: map[string]map[string]*stats{}}
	rssStart := map[string]procfs.ProcStatus{}
	for _, s := range sides[1:] {
		st, err := status(s.pid)
		if err != nil {
			return err
		}
		rssStart[s.name] = st
	}
	if err := b.warm(ctx); err != nil {
		return err
	}
	for _, k := range cases {
		if err := b.measure(ctx, k); err != nil {
			return err
		}
	}
	rssEnd := map[string]procfs.ProcStatus{}
	for _, s := range sides[1:] {
		st, err := status(s.pid)
		if err != nil {
			return fmt.Errorf("the %s webhook: %w", s.name, err)
		}
		rssEnd[s.name] = st
	}
	b.report(os.Stdout, report{started: started, took: time.Since(started), loadBefore: loadBefore, loadAfter: loadavg(),
		rssStart: rssStart, rssEnd: rssEnd, kyvernoLog: kyvernoLog(ky)})

	if c.decisions != "" {
		if c.kyverno == "" {
			fmt.Fprintln(os.Stderr, "bench-peers: decisions without Kyverno: its column says so")
		}
		if err := writeDecisions(ctx, c, cs, cp.Config, ky != nil, c.decisions); err != nil {
			return fmt.Errorf("decisions: %w", err)
		}
	}
	return nil
}

// installCopy copies the executable src into dir and returns the copy's path.
func installCopy(src, dir string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	dst := filepath.Join(dir, filepath.Base(src))
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	return dst, out.Close()
}

func kyvernoLog(p *process) string {
	if p == nil {
		return ""
	}
	return p.log
}

// newClientset returns an admin clientset with no client-side rate limit,
// so that the client is not the bottleneck.
func newClientset(cfg *rest.Config) (*kubernetes.Clientset, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	cfg.WarningHandlerWithContext = rest.NoWarnings{}
	return kubernetes.NewForConfig(cfg)
}

func createNamespace(ctx context.Context, cs *kubernetes.Clientset, name, sideName string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{sideLabel: sideName}}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// A benchCase is one kind of write.
type benchCase struct {
	name       string // "StatefulSet CREATE", "Secret CREATE"
	concurrent bool   // throughput of c.workers clients; else one at a time
	create     func(ctx context.Context, cs *kubernetes.Clientset, ns, name string) error
}

var cases = []benchCase{
	{
		name: "StatefulSet CREATE",
		create: func(ctx context.Context, cs *kubernetes.Clientset, ns, name string) error {
			sts := harness.StatefulSet(ns, name, headlessService, "registry.k8s.io/pause:3.10")
			sts.Spec.Selector.MatchLabels = podLabels
			sts.Spec.Template.Labels = podLabels
			_, err := cs.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{})
			return err
		},
	},
	{
		name:       "Secret CREATE",
		concurrent: true,
		create: func(ctx context.Context, cs *kubernetes.Clientset, ns, name string) error {
			s := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Type:       corev1.SecretTypeOpaque,
				Data:       map[string][]byte{"config.yaml": []byte("level: info\nendpoint: https://example.invalid/api\nretries: 3\n")},
			}
			_, err := cs.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{})
			return err
		},
	},
}

// requestTimeout bounds each write.
const requestTimeout = 30 * time.Second

// stats is one case on one side.
type stats struct {
	seq            []time.Duration
	parWrites      int
	parTime        time.Duration
	writes, errors int
	firstErr       error
	cpu            float64 // seconds of the side's webhook process over the writes
}

type bench struct {
	c     config
	cs    *kubernetes.Clientset
	sides []*side
	stats map[string]map[string]*stats // case, side
}

func objName(k benchCase, mode string, i int) string {
	kind, _, _ := strings.Cut(strings.ToLower(k.name), " ")
	return fmt.Sprintf("%s-%s-%05d", kind, mode, i)
}

// warm sends c.warmup unmeasured writes of each case on each side.
func (b *bench) warm(ctx context.Context) error {
	for _, k := range cases {
		for _, s := range b.sides {
			for i := range b.c.warmup {
				wctx, cancel := context.WithTimeout(ctx, requestTimeout)
				err := k.create(wctx, b.cs, s.namespace, objName(k, "warm", i))
				cancel()
				if err != nil {
					return fmt.Errorf("warm-up %s in %s: %w", k.name, s.namespace, err)
				}
			}
		}
	}
	return nil
}

// measure runs case k in c.rounds rounds; round r visits the sides starting
// with side r mod len(sides).
func (b *bench) measure(ctx context.Context, k benchCase) error {
	b.stats[k.name] = map[string]*stats{}
	for _, s := range b.sides {
		b.stats[k.name][s.name] = &stats{}
	}
	for r := range b.c.rounds {
		lo, hi := r*b.c.n/b.c.rounds, (r+1)*b.c.n/b.c.rounds
		for j := range b.sides {
			s := b.sides[(r+j)%len(b.sides)]
			if err := b.chunk(ctx, k, s, lo, hi, b.stats[k.name][s.name]); err != nil {
				return err
			}
		}
	}
	return nil
}

// chunk writes objects lo..hi-1 of k on side s and adds what the side's
// webhook process spent meanwhile to st.
func (b *bench) chunk(ctx context.Context, k benchCase, s *side, lo, hi int, st *stats) error {
	cpu0, err := cpuSeconds(s.pid)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		st.errors++
		if st.firstErr == nil {
			st.firstErr = err
		}
	}
	write := func(i int) (time.Duration, error) {
		wctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		start := time.Now()
		err := k.create(wctx, b.cs, s.namespace, objName(k, "m", i))
		return time.Since(start), err
	}
	start := time.Now()
	if !k.concurrent {
		for i := lo; i < hi && ctx.Err() == nil; i++ {
			d, err := write(i)
			if err != nil {
				fail(err)
				continue
			}
			st.seq = append(st.seq, d)
		}
	} else {
		var next atomic.Int64
		next.Store(int64(lo))
		var wg sync.WaitGroup
		for range b.c.workers {
			wg.Go(func() {
				for ctx.Err() == nil {
					i := int(next.Add(1) - 1)
					if i >= hi {
						return
					}
					if _, err := write(i); err != nil {
						fail(err)
					}
				}
			})
		}
		wg.Wait()
		st.parWrites += hi - lo
		st.parTime += time.Since(start)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	st.writes += hi - lo
	cpu1, err := cpuSeconds(s.pid)
	if err != nil {
		return fmt.Errorf("the %s webhook: %w", s.name, err)
	}
	st.cpu += cpu1 - cpu0
	return nil
}

// cpuSeconds returns the user plus system CPU time of process pid (0 for
// pid 0, the side without a webhook).
func cpuSeconds(pid int) (float64, error) {
	if pid == 0 {
		return 0, nil
	}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, err
	}
	st, err := p.Stat()
	if err != nil {
		return 0, err
	}
	return st.CPUTime(), nil
}

// status returns /proc/<pid>/status (VmRSS, VmHWM).
func status(pid int) (procfs.ProcStatus, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return procfs.ProcStatus{}, err
	}
	return p.NewStatus()
}

func loadavg() string {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return "unknown"
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.2f %.2f %.2f", l.Load1, l.Load5, l.Load15)
}

type report struct {
	started               time.Time
	took                  time.Duration
	loadBefore, loadAfter string
	rssStart, rssEnd      map[string]procfs.ProcStatus
	kyvernoLog            string
}

// Targets (docs/comparison.md).
const (
	targetVsNoop       = 1.1 // stsguard added p50 / no-op added p50, at most
	targetVsKyverno    = 0.5 // stsguard added p50 / Kyverno added p50, at most
	targetCostVsKyvern = 1.0 / 3
)

func (b *bench) report(w io.Writer, r report) {
	c := b.c
	var names []string
	for _, s := range b.sides {
		names = append(names, s.name)
	}
	fmt.Fprintf(w, "## make bench-peers: writes\n\n")
	fmt.Fprintf(w, "%s; %d CPUs (GOMAXPROCS %d); load average %s before, %s after; the run took %s; -n %d -workers %d -rounds %d -warmup %d; sides: %s.\n\n",
		r.started.UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.GOMAXPROCS(0), r.loadBefore, r.loadAfter,
		r.took.Round(time.Second), c.n, c.workers, c.rounds, c.warmup, strings.Join(names, ", "))

	sts, sec := b.stats[cases[0].name], b.stats[cases[1].name]
	none := sts["none"]
	base50, base99 := percentile(none.seq, 0.50), percentile(none.seq, 0.99)
	fmt.Fprintln(w, "| side | StatefulSet CREATE p50 | added p50 | p99 | added p99 | Secret CREATE writes/s (8 clients) | vs none | webhook CPU per StatefulSet CREATE | per Secret CREATE | RSS after start-up / at the end / peak | errors |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	tpNone := throughput(sec["none"])
	for _, s := range b.sides {
		a, z := sts[s.name], sec[s.name]
		p50, p99 := percentile(a.seq, 0.50), percentile(a.seq, 0.99)
		cpuSts, cpuSec, rss := "—", "—", "—"
		if s.pid != 0 {
			cpuSts, cpuSec = us(a.cpu/float64(a.writes)), us(z.cpu/float64(z.writes))
			end := r.rssEnd[s.name]
			rss = fmt.Sprintf("%s / %s (%s anonymous, %s file) / %s", mib(r.rssStart[s.name].VmRSS), mib(end.VmRSS), mib(end.RssAnon), mib(end.RssFile), mib(end.VmHWM))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.0f | %.2f× | %s | %s | %s | %d / %d |\n",
			s.name, ms(p50), ms(p50-base50), ms(p99), ms(p99-base99), throughput(z), throughput(z)/tpNone, cpuSts, cpuSec, rss, a.errors, z.errors)
	}
	fmt.Fprintln(w)

	added := func(name string) time.Duration { return percentile(sts[name].seq, 0.50) - base50 }
	cpuPerWrite := func(name string) float64 {
		a, z := sts[name], sec[name]
		return (a.cpu + z.cpu) / float64(a.writes+z.writes)
	}
	fmt.Fprintln(w, "| target | measured | |")
	fmt.Fprintln(w, "| --- | --- | --- |")
	fmt.Fprintf(w, "| stsguard added p50 ≤ %.1f× the no-op's | %s / %s = %.2f× | %s |\n", targetVsNoop,
		ms(added("stsguard")), ms(added("noop")), ratio(added("stsguard"), added("noop")), verdict(ratio(added("stsguard"), added("noop")) <= targetVsNoop))
	if _, ok := sts["kyverno"]; ok {
		fmt.Fprintf(w, "| stsguard added p50 ≤ ½ Kyverno's | %s / %s = %.2f× | %s |\n",
			ms(added("stsguard")), ms(added("kyverno")), ratio(added("stsguard"), added("kyverno")), verdict(ratio(added("stsguard"), added("kyverno")) <= targetVsKyverno))
		cs, ck := cpuPerWrite("stsguard"), cpuPerWrite("kyverno")
		fmt.Fprintf(w, "| stsguard CPU per write ≤ ⅓ Kyverno's | %s / %s = %.2f× | %s |\n", us(cs), us(ck), cs/ck, verdict(cs/ck <= targetCostVsKyvern))
		rs, rk := r.rssEnd["stsguard"].VmRSS, r.rssEnd["kyverno"].VmRSS
		fmt.Fprintf(w, "| stsguard RSS ≤ ⅓ Kyverno's (at the end) | %s / %s = %.2f× | %s |\n", mib(rs), mib(rk), float64(rs)/float64(rk), verdict(float64(rs)/float64(rk) <= targetCostVsKyvern))
	} else {
		fmt.Fprintln(w, "| the targets against Kyverno | Kyverno not run | — |")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Latency is client-side, one write at a time; added = the side's figure minus no webhook's. "+
		"Webhook CPU is the process's utime+stime (10 ms ticks) over the side's writes of the case, divided by them, informers and "+
		"background work included. CPU per write in the targets is over both cases. RSS is VmRSS and VmHWM of /proc/<pid>/status; "+
		"anonymous is the heap and stacks, file the pages of the binary (and other files) mapped in.")
	for _, k := range cases {
		for _, s := range b.sides {
			if st := b.stats[k.name][s.name]; st.firstErr != nil {
				fmt.Fprintf(w, "\nfirst error of %s in %s: %v\n", k.name, s.namespace, st.firstErr)
			}
		}
	}
	if r.kyvernoLog != "" && c.logs != "" {
		fmt.Fprintf(w, "\nKyverno's log: %s\n", r.kyvernoLog)
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// percentile returns the nearest-rank p-quantile of ds (0 when empty).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func throughput(st *stats) float64 {
	if st.parTime <= 0 {
		return 0
	}
	return float64(st.parWrites) / st.parTime.Seconds()
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func us(seconds float64) string { return fmt.Sprintf("%.0f µs", seconds*1e6) }

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// errNotJudged is returned by waitJudged when a side's webhook does not
// deny the probe in time.
var errNotJudged = errors.New("the webhook does not judge its namespace's writes")
