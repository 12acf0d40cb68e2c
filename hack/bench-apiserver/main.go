package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/stsguard/stsguard/test/harness"
)

// withoutNS is where the writes without the webhooks go: every webhook's
// namespaceSelector excludes it. With the webhooks, each kind is written
// into a namespace of its own (kind.namespace), so that what one case
// leaves behind does not weigh on the next.
const withoutNS = "kube-system"

// headlessService is the Service every benchmark StatefulSet names, so that
// its CREATE takes the common path (the Service is in the cache).
const headlessService = "bench-hl"

// podLabels are the pod template labels of the benchmark StatefulSets,
// selected by headlessService.
var podLabels = map[string]string{"app": "bench"}

type config struct {
	n, workers, rounds, warmup int
	neighbours                 int
	stsguard, profile          string
	profileSeconds             int
	apiserverProfile           string
	serveFlags                 serveFlags
	serveEnv                   serveEnv
	timeout                    time.Duration
}

func main() {
	var c config
	flag.IntVar(&c.n, "n", 1000, "writes per case and side, for the sequential and for the concurrent measurement each")
	flag.IntVar(&c.workers, "workers", 8, "concurrent clients of the throughput measurement")
	flag.IntVar(&c.rounds, "rounds", 4, "rounds each case is split into, alternating with and without the webhooks")
	flag.IntVar(&c.warmup, "warmup", 50, "unmeasured writes per kind and side before measuring")
	flag.IntVar(&c.neighbours, "neighbours", 20, "StatefulSets (each reading a Secret's password) already in the namespaces of the Service and Secret writes, which the rules on those kinds read")
	flag.StringVar(&c.stsguard, "stsguard", "bin/stsguard", "the stsguard binary to serve the webhooks with")
	flag.StringVar(&c.profile, "profile", "", "save a CPU profile of stsguard under concurrent writes to this file")
	flag.IntVar(&c.profileSeconds, "profile-seconds", 20, "length of the -profile CPU profile")
	flag.StringVar(&c.apiserverProfile, "apiserver-profile", "", "save CPU profiles of kube-apiserver under label-only UPDATEs with the webhooks (to this file) and without them (to this file.without), and under CREATEs with them (to this file.create)")
	flag.Var(&c.serveFlags, "serve-flag", "a flag to pass to stsguard serve, such as --enable-http2 (repeatable)")
	flag.Var(&c.serveEnv, "serve-env", "an environment variable KEY=VALUE of stsguard serve only, such as GOMAXPROCS=1 (repeatable)")
	flag.DurationVar(&c.timeout, "timeout", 30*time.Minute, "limit of the whole run")
	flag.Parse()
	if err := c.check(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-apiserver:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bench-apiserver:", err)
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
	case c.neighbours < 0 || c.neighbours > 10_000:
		return fmt.Errorf("-neighbours %d: want 0 to 10000", c.neighbours)
	case c.profileSeconds < 1 || c.profileSeconds > 300:
		return fmt.Errorf("-profile-seconds %d: want 1 to 300", c.profileSeconds)
	}
	bin, err := filepath.Abs(c.stsguard)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("-stsguard: %w (run make build)", err)
	}
	c.stsguard = bin
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
	dir, err := os.MkdirTemp("", "bench-apiserver-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := cp.WriteKubeconfig(kubeconfig); err != nil {
		return err
	}
	extra := slices.Clone(c.serveFlags)
	var pprofAddr string
	if c.profile != "" {
		if pprofAddr, err = harness.FreeAddr(); err != nil {
			return err
		}
		extra = append(extra, "--pprof-bind-address", pprofAddr)
	}
	logPath := filepath.Join(dir, "stsguard.log")
	// The control plane runs already: what is set now reaches stsguard
	// serve (which inherits this environment) and not kube-apiserver or
	// etcd; this process's own runtime read its settings at start.
	if err := c.serveEnv.set(); err != nil {
		return err
	}
	srv, err := harness.ServeBinary(cp, c.stsguard, kubeconfig, logPath, extra...)
	if err != nil {
		return err
	}
	defer srv.Stop()

	apiserverPid, err := childNamed("kube-apiserver")
	if err != nil {
		return err
	}
	cs, warnings, err := newClientset(cp.Config)
	if err != nil {
		return err
	}
	b := &bench{c: c, cs: cs, srv: srv, apiserverPid: apiserverPid, stats: map[caseKey]*sideStats{}}
	if err := b.setup(ctx); err != nil {
		return err
	}
	rssStart, _, err := harness.ProcMemory(srv.Pid())
	if err != nil {
		return err
	}
	if err := b.warm(ctx); err != nil {
		return err
	}
	for _, k := range kinds {
		for _, op := range []string{"CREATE", "UPDATE"} {
			if err := b.measure(ctx, k, op); err != nil {
				return err
			}
			if err := srv.Exited(); err != nil {
				return fmt.Errorf("%w (log: %s)", err, logPath)
			}
		}
	}
	rssEnd, rssPeak, err := harness.ProcMemory(srv.Pid())
	if err != nil {
		return err
	}
	served, err := b.scrapeStsguard(ctx)
	if err != nil {
		return err
	}
	apiserver, err := b.scrapeApiserver(ctx)
	if err != nil {
		return err
	}
	loadAfter := loadavg()

	b.report(os.Stdout, report{
		started: started, took: time.Since(started), loadBefore: loadBefore, loadAfter: loadAfter,
		rssStart: rssStart, rssEnd: rssEnd, rssPeak: rssPeak, served: served, apiserver: apiserver,
		warnings: warnings.n.Load(), version: stsguardVersion(c.stsguard),
	})

	if c.profile != "" {
		p, err := b.profile(ctx, pprofAddr)
		if err != nil {
			return err
		}
		fmt.Printf("\nCPU profile of stsguard over %d s of %d clients writing through the webhooks (CREATE then a label UPDATE, the three kinds in turn): %s\n"+
			"  go tool pprof -top %s %s\n", c.profileSeconds, c.workers, c.profile, c.stsguard, c.profile)
		if p.reviews > 0 {
			fmt.Printf("Meanwhile: %.0f writes (%.0f/s), %.0f AdmissionReviews; stsguard used %.2f s of CPU (%.0f%% of one CPU), %s per review.\n",
				p.writes, p.writes/p.wall.Seconds(), p.reviews, p.cpu, 100*p.cpu/p.wall.Seconds(), us(p.cpu/p.reviews))
		}
	}
	if c.apiserverProfile != "" {
		if err := b.profileApiserver(ctx, os.Stdout); err != nil {
			return err
		}
	}
	return nil
}

// countWarnings counts the API warnings the client receives instead of
// printing them: the benchmark objects should draw none.
type countWarnings struct{ n atomic.Int64 }

func (w *countWarnings) HandleWarningHeaderWithContext(context.Context, int, string, string) {
	w.n.Add(1)
}

// newClientset returns an admin clientset with no client-side rate limit,
// so that the client is not the bottleneck.
func newClientset(cfg *rest.Config) (*kubernetes.Clientset, *countWarnings, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	w := &countWarnings{}
	cfg.WarningHandlerWithContext = w
	cs, err := kubernetes.NewForConfig(cfg)
	return cs, w, err
}

// A kind is what the benchmark writes: create makes a fresh object, label
// sends a label-only JSON merge patch.
type kind struct {
	name      string
	namespace string // of the writes with the webhooks
	create    func(ctx context.Context, cs *kubernetes.Clientset, ns, name string) error
	label     func(ctx context.Context, cs *kubernetes.Clientset, ns, name string, patch []byte) error
}

// labelPatch adds a label no rule reads: what kubectl label, Argo CD and
// cert-manager send all day.
var labelPatch = []byte(`{"metadata":{"labels":{"bench.stsguard.io/touched":"yes"}}}`)

var kinds = []kind{
	{
		name:      "StatefulSet",
		namespace: "bench-statefulsets",
		create: func(ctx context.Context, cs *kubernetes.Clientset, ns, name string) error {
			sts := harness.StatefulSet(ns, name, headlessService, "registry.k8s.io/pause:3.10")
			sts.Spec.Selector.MatchLabels = podLabels
			sts.Spec.Template.Labels = podLabels
			_, err := cs.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{})
			return err
		},
		label: func(ctx context.Context, cs *kubernetes.Clientset, ns, name string, patch []byte) error {
			_, err := cs.AppsV1().StatefulSets(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
			return err
		},
	},
	{
		// Headless, as the Services of StatefulSets are (and a ClusterIP
		// Service would exhaust the apiserver's small service range).
		name:      "Service",
		namespace: "bench-services",
		create: func(ctx context.Context, cs *kubernetes.Clientset, ns, name string) error {
			_, err := cs.CoreV1().Services(ns).Create(ctx, harness.Service(ns, name, corev1.ClusterIPNone, podLabels), metav1.CreateOptions{})
			return err
		},
		label: func(ctx context.Context, cs *kubernetes.Clientset, ns, name string, patch []byte) error {
			_, err := cs.CoreV1().Services(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
			return err
		},
	},
	{
		name:      "Secret",
		namespace: "bench-secrets",
		create: func(ctx context.Context, cs *kubernetes.Clientset, ns, name string) error {
			s := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Type:       corev1.SecretTypeOpaque,
				Data:       map[string][]byte{"config.yaml": []byte("level: info\nendpoint: https://example.invalid/api\nretries: 3\n")},
			}
			_, err := cs.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{})
			return err
		},
		label: func(ctx context.Context, cs *kubernetes.Clientset, ns, name string, patch []byte) error {
			_, err := cs.CoreV1().Secrets(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
			return err
		},
	},
}

// requestTimeout bounds each write.
const requestTimeout = 30 * time.Second

// write runs op (CREATE or UPDATE) of k on ns/name and returns its latency.
func write(ctx context.Context, cs *kubernetes.Clientset, k kind, op, ns, name string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	start := time.Now()
	var err error
	if op == "CREATE" {
		err = k.create(ctx, cs, ns, name)
	} else {
		err = k.label(ctx, cs, ns, name, labelPatch)
	}
	return time.Since(start), err
}

type caseKey struct {
	kind, op string
	with     bool
}

// sideStats is one case on one side.
type sideStats struct {
	seq                []time.Duration // latencies of the sequential writes
	parWrites          int             // writes of the concurrent measurement
	parTime            time.Duration   // its wall time
	writes, errors     int
	firstErr           error
	stsguardCPU        float64 // seconds, over all of this side's writes
	reviews            float64 // AdmissionReviews stsguard served meanwhile
	apiserverCPU       float64 // seconds
	handlerSeconds     float64 // stsguard's own handler time (controller_runtime_webhook_latency_seconds)
	handlerObservation float64
}

type bench struct {
	c            config
	cs           *kubernetes.Clientset
	srv          *harness.Serving
	apiserverPid int
	stats        map[caseKey]*sideStats
}

// ns is the namespace of k's writes with or without the webhooks.
func ns(k kind, with bool) string {
	if with {
		return k.namespace
	}
	return withoutNS
}

// setup creates the namespaces of the webhook side; in each, and in
// kube-system, the headless Service the StatefulSets name; and in the
// namespaces of the Service and Secret writes, c.neighbours StatefulSets
// reading a password from a Secret (the rules on Services and Secrets read
// the StatefulSets of the namespace). Then it gives stsguard's cache a
// moment to see them, so that no write reads them live.
func (b *bench) setup(ctx context.Context) error {
	password := make([]byte, 18)
	if _, err := rand.Read(password); err != nil {
		return err
	}
	for _, k := range kinds {
		if _, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: k.namespace}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating namespace %s: %w", k.namespace, err)
		}
	}
	for _, namespace := range []string{kinds[0].namespace, kinds[1].namespace, kinds[2].namespace, withoutNS} {
		if _, err := b.cs.CoreV1().Services(namespace).Create(ctx, harness.Service(namespace, headlessService, corev1.ClusterIPNone, podLabels), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating Service %s/%s: %w", namespace, headlessService, err)
		}
	}
	for _, k := range kinds[1:] {
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: k.namespace, Name: "bench-db"},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{"password": []byte(hex.EncodeToString(password))},
		}
		if _, err := b.cs.CoreV1().Secrets(k.namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating Secret %s/bench-db: %w", k.namespace, err)
		}
		for i := range b.c.neighbours {
			sts := harness.StatefulSet(k.namespace, fmt.Sprintf("neighbour-%05d", i), headlessService, "registry.k8s.io/pause:3.10")
			sts.Spec.Selector.MatchLabels = podLabels
			sts.Spec.Template.Labels = podLabels
			c := &sts.Spec.Template.Spec.Containers[0]
			c.Env = []corev1.EnvVar{{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "bench-db"}, Key: "password"},
			}}}
			if _, err := b.cs.AppsV1().StatefulSets(k.namespace).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("creating StatefulSet %s/%s: %w", k.namespace, sts.Name, err)
			}
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Second):
	}
	return nil
}

// warm sends -warmup unmeasured creates and updates of each kind on each
// side: connections, caches and code paths warm.
func (b *bench) warm(ctx context.Context) error {
	for _, k := range kinds {
		for _, with := range []bool{true, false} {
			for _, op := range []string{"CREATE", "UPDATE"} {
				for i := range b.c.warmup {
					if _, err := write(ctx, b.cs, k, op, ns(k, with), objName(k, "warm", i)); err != nil {
						return fmt.Errorf("warm-up %s %s in %s: %w", op, k.name, ns(k, with), err)
					}
				}
			}
		}
	}
	return nil
}

func objName(k kind, mode string, i int) string {
	return fmt.Sprintf("%s-%s-%05d", strings.ToLower(k.name), mode, i)
}

// measure runs the sequential and the concurrent measurement of op on k,
// each in rounds that alternate between the sides (the side that goes
// first alternates too). UPDATE patches the objects CREATE made.
func (b *bench) measure(ctx context.Context, k kind, op string) error {
	for _, mode := range []string{"seq", "par"} {
		for r := range b.c.rounds {
			lo, hi := r*b.c.n/b.c.rounds, (r+1)*b.c.n/b.c.rounds
			sides := []bool{true, false}
			if r%2 == 1 {
				sides = []bool{false, true}
			}
			for _, with := range sides {
				st := b.stats[caseKey{k.name, op, with}]
				if st == nil {
					st = &sideStats{}
					b.stats[caseKey{k.name, op, with}] = st
				}
				if err := b.chunk(ctx, k, op, mode, with, lo, hi, st); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// chunk writes objects lo..hi-1 of mode on one side, one at a time (seq)
// or by b.c.workers clients (par), and adds what stsguard and the apiserver
// spent meanwhile to st.
func (b *bench) chunk(ctx context.Context, k kind, op, mode string, with bool, lo, hi int, st *sideStats) error {
	before, err := b.scrapeStsguard(ctx)
	if err != nil {
		return err
	}
	cpu0, err := harness.ProcCPUSeconds(b.srv.Pid())
	if err != nil {
		return err
	}
	api0, err := harness.ProcCPUSeconds(b.apiserverPid)
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
	start := time.Now()
	switch mode {
	case "seq":
		for i := lo; i < hi && ctx.Err() == nil; i++ {
			d, err := write(ctx, b.cs, k, op, ns(k, with), objName(k, mode, i))
			if err != nil {
				fail(err)
				continue
			}
			st.seq = append(st.seq, d)
		}
	case "par":
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
					if _, err := write(ctx, b.cs, k, op, ns(k, with), objName(k, mode, i)); err != nil {
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
	cpu1, err := harness.ProcCPUSeconds(b.srv.Pid())
	if err != nil {
		return err
	}
	api1, err := harness.ProcCPUSeconds(b.apiserverPid)
	if err != nil {
		return err
	}
	after, err := b.scrapeStsguard(ctx)
	if err != nil {
		return err
	}
	st.stsguardCPU += cpu1 - cpu0
	st.apiserverCPU += api1 - api0
	st.reviews += after.reviews - before.reviews
	st.handlerSeconds += after.handlerSeconds - before.handlerSeconds
	st.handlerObservation += after.handlerCount - before.handlerCount
	return nil
}

// served is what stsguard's metrics say it served.
type served struct {
	reviews, non200                           float64
	handlerSeconds, handlerCount              float64
	failOpen, webhookCalls, webhookCallSecond float64 // the apiserver's view (scrapeApiserver)
}

func (b *bench) scrapeStsguard(ctx context.Context) (served, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.srv.MetricsAddr+"/metrics", nil)
	if err != nil {
		return served{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return served{}, fmt.Errorf("scraping stsguard: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return served{}, fmt.Errorf("scraping stsguard: %s", resp.Status)
	}
	families, err := parseMetrics(resp.Body)
	if err != nil {
		return served{}, fmt.Errorf("scraping stsguard: %w", err)
	}
	var s served
	for _, m := range families["controller_runtime_webhook_requests_total"].GetMetric() {
		s.reviews += m.GetCounter().GetValue()
		if label(m, "code") != "200" {
			s.non200 += m.GetCounter().GetValue()
		}
	}
	for _, m := range families["controller_runtime_webhook_latency_seconds"].GetMetric() {
		s.handlerSeconds += m.GetHistogram().GetSampleSum()
		s.handlerCount += float64(m.GetHistogram().GetSampleCount())
	}
	return s, nil
}

// scrapeApiserver returns the apiserver's count of webhook calls that
// failed open (failurePolicy Ignore: an error or a timeout let the write
// through unjudged), and the count and total time of its calls to
// stsguard's webhooks.
func (b *bench) scrapeApiserver(ctx context.Context) (served, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	raw, err := b.cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return served{}, fmt.Errorf("scraping the apiserver: %w", err)
	}
	families, err := parseMetrics(bytes.NewReader(raw))
	if err != nil {
		return served{}, fmt.Errorf("scraping the apiserver: %w", err)
	}
	var s served
	for _, m := range families["apiserver_admission_webhook_fail_open_count"].GetMetric() {
		s.failOpen += m.GetCounter().GetValue()
	}
	for _, m := range families["apiserver_admission_webhook_admission_duration_seconds"].GetMetric() {
		if strings.HasSuffix(label(m, "name"), ".stsguard.io") {
			s.webhookCalls += float64(m.GetHistogram().GetSampleCount())
			s.webhookCallSecond += m.GetHistogram().GetSampleSum()
		}
	}
	return s, nil
}

func parseMetrics(r io.Reader) (map[string]*dto.MetricFamily, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(r)
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// profile takes a CPU profile of stsguard over c.profileSeconds while
// c.workers clients write every kind through the webhooks (creates and
// label updates in turn), and saves it to c.profile. The load stops when
// the profile is in (the writes in flight finish), after profileSeconds+30 s
// (they are cut short), or after a million objects.
func (b *bench) profile(ctx context.Context, pprofAddr string) (profiled, error) {
	loadCtx, stopLoad := context.WithTimeout(ctx, time.Duration(b.c.profileSeconds+30)*time.Second)
	defer stopLoad()
	var next, done, errs atomic.Int64
	var stop atomic.Bool // the workers finish the write in flight and return
	var wg sync.WaitGroup
	for range b.c.workers {
		wg.Go(func() {
			for !stop.Load() && loadCtx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= 1_000_000 {
					return
				}
				k := kinds[i%len(kinds)]
				name := objName(k, "prof", i)
				for _, op := range []string{"CREATE", "UPDATE"} {
					if _, err := write(loadCtx, b.cs, k, op, k.namespace, name); err != nil {
						errs.Add(1)
						break
					}
					done.Add(1)
				}
			}
		})
	}
	var p profiled
	err := func() error {
		// Let the load settle before the profile starts.
		select {
		case <-loadCtx.Done():
			return loadCtx.Err()
		case <-time.After(2 * time.Second):
		}
		pctx, cancel := context.WithTimeout(loadCtx, time.Duration(b.c.profileSeconds+20)*time.Second)
		defer cancel()
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, b.c.profileSeconds)
		req, err := http.NewRequestWithContext(pctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if err := b.sample(loadCtx, &p, &done, -1); err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("CPU profile: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			return fmt.Errorf("CPU profile: %s: %s", resp.Status, bytes.TrimSpace(body))
		}
		// The response starts when the profile is over.
		if err := b.sample(loadCtx, &p, &done, +1); err != nil {
			return err
		}
		f, err := os.Create(b.c.profile)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			return fmt.Errorf("CPU profile: %w", err)
		}
		return f.Close()
	}()
	stop.Store(true)
	wg.Wait()
	if err != nil {
		return profiled{}, err
	}
	if n := errs.Load(); n > 0 {
		return profiled{}, fmt.Errorf("profile load: %d writes failed", n)
	}
	return p, nil
}

// profiled is what happened while the profile was taken (the end's sample
// minus the start's).
type profiled struct {
	writes, reviews, cpu float64
	wall                 time.Duration
}

// sample adds sign times the writes done, the reviews stsguard served, its
// CPU seconds and the time to p. The CPU time is read on the side of the
// scrape that leaves the scrape's own cost out.
func (b *bench) sample(ctx context.Context, p *profiled, done *atomic.Int64, sign float64) error {
	var cpu float64
	var err error
	if sign > 0 {
		if cpu, err = harness.ProcCPUSeconds(b.srv.Pid()); err != nil {
			return err
		}
	}
	s, err := b.scrapeStsguard(ctx)
	if err != nil {
		return err
	}
	if sign < 0 {
		if cpu, err = harness.ProcCPUSeconds(b.srv.Pid()); err != nil {
			return err
		}
	}
	p.writes += sign * float64(done.Load())
	p.reviews += sign * s.reviews
	p.cpu += sign * cpu
	p.wall += time.Duration(sign) * time.Duration(time.Now().UnixNano())
	return nil
}

// childNamed returns the pid of this process's child whose command name is
// name (envtest starts kube-apiserver and etcd as children).
func childNamed(name string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		open, end := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(string(raw[end+1:]))
		if len(f) > 1 && string(raw[open+1:end]) == name && f[1] == strconv.Itoa(self) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no child process %s of this process", name)
}

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

func stsguardVersion(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return "stsguard version unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}

type report struct {
	started                   time.Time
	took                      time.Duration
	loadBefore, loadAfter     string
	rssStart, rssEnd, rssPeak int64
	served, apiserver         served
	warnings                  int64
	version                   string
}

// Targets of the write path (docs/speed.md).
const (
	targetCreateP50      = 1.3  // StatefulSet CREATE p50, with/without
	targetCreateP99      = 1.5  // StatefulSet CREATE p99
	targetSecretCreateTP = 0.85 // Secret CREATE throughput, with/without
	targetNoopUpdate     = 1.05 // an UPDATE no rule judges, with/without
	targetCPUPerReview   = 100e-6
)

func (b *bench) report(w io.Writer, r report) {
	c := b.c
	fmt.Fprintf(w, "## make bench-apiserver\n\n")
	fmt.Fprintf(w, "%s; %s; %d CPUs (GOMAXPROCS %d); load average %s before, %s after; the run took %s; "+
		"-n %d -workers %d -rounds %d -warmup %d -neighbours %d%s.\n",
		r.started.UTC().Format("2006-01-02 15:04 MST"), r.version, runtime.NumCPU(), runtime.GOMAXPROCS(0),
		r.loadBefore, r.loadAfter, r.took.Round(time.Second), c.n, c.workers, c.rounds, c.warmup, c.neighbours, c.serveFlags.describe()+c.serveEnv.describe())
	fmt.Fprintf(w, "With the webhooks: namespaces %s, %s and %s, one per kind (the last two with %d StatefulSets reading a Secret); "+
		"without: %s (excluded by the webhooks' namespaceSelector). "+
		"Client-side latency of one write at a time (%d per case and side), throughput of %d writes by %d clients; "+
		"the %d rounds of each alternate between the sides. UPDATE is a label-only merge patch.\n\n",
		kinds[0].namespace, kinds[1].namespace, kinds[2].namespace, c.neighbours, withoutNS, c.n, c.n, c.workers, c.rounds)

	fmt.Fprintln(w, "| write | p50 with / without | ratio | target | p99 with / without | ratio | target | writes/s with / without | ratio | target | errors |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, k := range kinds {
		for _, op := range []string{"CREATE", "UPDATE"} {
			with, without := b.stats[caseKey{k.name, op, true}], b.stats[caseKey{k.name, op, false}]
			p50w, p50o := percentile(with.seq, 0.50), percentile(without.seq, 0.50)
			p99w, p99o := percentile(with.seq, 0.99), percentile(without.seq, 0.99)
			tpw, tpo := throughput(with), throughput(without)
			var t50, t99, ttp string
			switch {
			case op == "CREATE" && k.name == "StatefulSet":
				t50, t99 = atMost(ratio(p50w, p50o), targetCreateP50), atMost(ratio(p99w, p99o), targetCreateP99)
			case op == "CREATE" && k.name == "Secret":
				ttp = atLeast(tpw/tpo, targetSecretCreateTP)
			case op == "UPDATE":
				t50 = atMost(ratio(p50w, p50o), targetNoopUpdate)
			}
			fmt.Fprintf(w, "| %s %s | %s / %s | %.2f× | %s | %s / %s | %.2f× | %s | %.0f / %.0f | %.2f× | %s | %d / %d |\n",
				k.name, op, ms(p50w), ms(p50o), ratio(p50w, p50o), dash(t50), ms(p99w), ms(p99o), ratio(p99w, p99o), dash(t99),
				tpw, tpo, tpw/tpo, dash(ttp), with.errors, without.errors)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Targets: StatefulSet CREATE p50 ≤ 1.3×, p99 ≤ 1.5×; Secret CREATE throughput ≥ 0.85×; "+
		"an UPDATE no rule judges ≤ 1.05× (shown at p50); stsguard CPU per review ≤ 100 µs.")
	fmt.Fprintln(w)

	fmt.Fprintln(w, "| write | reviews per write | stsguard CPU per write with / without | stsguard CPU per review | target | net of watch events | handler time per review | apiserver CPU per write with / without |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, k := range kinds {
		for _, op := range []string{"CREATE", "UPDATE"} {
			with, without := b.stats[caseKey{k.name, op, true}], b.stats[caseKey{k.name, op, false}]
			perWrite, perWriteWithout := with.stsguardCPU/float64(with.writes), without.stsguardCPU/float64(without.writes)
			perReview, target, net, handler := "—", "—", "—", "—"
			if with.reviews > 0 {
				cpu := with.stsguardCPU / with.reviews
				perReview = us(cpu)
				target = "≤ 100 µs met"
				if cpu > targetCPUPerReview {
					target = "≤ 100 µs **missed**"
				}
				net = us(max(0, with.stsguardCPU-perWriteWithout*float64(with.writes)) / with.reviews)
			}
			if with.handlerObservation > 0 {
				handler = us(with.handlerSeconds / with.handlerObservation)
			}
			fmt.Fprintf(w, "| %s %s | %.2f | %s / %s | %s | %s | %s | %s | %s / %s |\n",
				k.name, op, with.reviews/float64(with.writes), us(perWrite), us(perWriteWithout), perReview, target, net, handler,
				us(with.apiserverCPU/float64(with.writes)), us(without.apiserverCPU/float64(without.writes)))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "stsguard CPU is its process's CPU time (utime+stime of /proc/<pid>/stat, 10 ms ticks) over all the writes of a case and side. "+
		"Per review, it is divided by the AdmissionReviews it served meanwhile (controller_runtime_webhook_requests_total); "+
		"that includes its informers' handling of the watch events of those writes, which the writes without webhooks cost alone "+
		"(\"without\"); \"net of watch events\" subtracts that per write. "+
		"Handler time is controller-runtime's webhook latency histogram: wall time inside stsguard's handler, not CPU.")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "stsguard RSS: %s after start-up, %s at the end, %s peak. ", mib(r.rssStart), mib(r.rssEnd), mib(r.rssPeak))
	fmt.Fprintf(w, "Reviews served in all: %.0f (%.0f not 200). ", r.served.reviews, r.served.non200)
	mean := "—"
	if r.apiserver.webhookCalls > 0 {
		mean = us(r.apiserver.webhookCallSecond / r.apiserver.webhookCalls)
	}
	handler := "—"
	if r.served.handlerCount > 0 {
		handler = us(r.served.handlerSeconds / r.served.handlerCount)
	}
	fmt.Fprintf(w, "The apiserver's calls to stsguard: %.0f, %s mean as the apiserver times them (stsguard's handler: %s mean); "+
		"failed open: %.0f. API warnings received: %d.\n", r.apiserver.webhookCalls, mean, handler, r.apiserver.failOpen, r.warnings)
	for _, k := range kinds {
		for _, op := range []string{"CREATE", "UPDATE"} {
			for _, with := range []bool{true, false} {
				if st := b.stats[caseKey{k.name, op, with}]; st.firstErr != nil {
					fmt.Fprintf(w, "\nfirst error of %s %s in %s: %v\n", k.name, op, ns(k, with), st.firstErr)
				}
			}
		}
	}
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

func throughput(st *sideStats) float64 {
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

func atMost(v, limit float64) string {
	if v <= limit {
		return fmt.Sprintf("≤ %.2f× met", limit)
	}
	return fmt.Sprintf("≤ %.2f× **missed**", limit)
}

func atLeast(v, limit float64) string {
	if v >= limit {
		return fmt.Sprintf("≥ %.2f× met", limit)
	}
	return fmt.Sprintf("≥ %.2f× **missed**", limit)
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func us(seconds float64) string { return fmt.Sprintf("%.0f µs", seconds*1e6) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
