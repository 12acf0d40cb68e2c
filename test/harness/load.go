package harness

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// Load is writers creating StatefulSets with a literal password and
// Secrets in one namespace, at a steady rate, until Stop: the writes a
// webhook must judge while it is restarted, upgraded or broken. A
// StatefulSet stored with its literal password is one that stsguard's
// password-secret-ref never judged.
type Load struct {
	Namespace string
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	mu        sync.Mutex
	result    LoadResult
}

// LoadResult counts a Load's writes.
type LoadResult struct {
	// Writes is the number of writes sent, Failed those the apiserver
	// refused (or that failed on the way), StatefulSets and Secrets the
	// writes of each kind that were stored.
	Writes, Failed, StatefulSets, Secrets int
	// Errors are the first errors of failed writes.
	Errors []string
	// KeptLiteral are the StatefulSets stored with their literal password
	// because stsguard could not write the Secret to move it into, and
	// said so in a warning (password-secret-ref fails open that way): they
	// were judged, unlike a literal stored without that warning.
	KeptLiteral []string
	// KeptWarnings are the first of stsguard's warnings that said so.
	KeptWarnings []string
}

// secretNotWritten is how password-secret-ref's warning begins when it
// could not write the Secret and left the literal in place.
const secretNotWritten = "stsguard could not write Secret"

// LoadPasswordEnv is the env var whose literal value Load's StatefulSets
// carry.
const LoadPasswordEnv = "MYSQL_ROOT_PASSWORD"

// LoadService is the headless Service Load's StatefulSets name.
const LoadService = "db"

// StartLoad creates namespace and its headless Service LoadService, then
// starts writers goroutines, each writing every interval (a StatefulSet,
// then a Secret, in turn) through a client of cfg of its own. It returns an
// error when the namespace or the Service cannot be created.
func StartLoad(ctx context.Context, cfg *rest.Config, namespace string, writers int, interval time.Duration) (*Load, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	svc := Service(namespace, LoadService, corev1.ClusterIPNone, map[string]string{"app": LoadService})
	if _, err := cs.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating Service %s/%s: %w", namespace, LoadService, err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &Load{Namespace: namespace, cancel: cancel}
	for w := range writers {
		c := rest.CopyConfig(cfg)
		c.QPS, c.Burst = -1, 0 // the interval is the limit
		// stsguard's warnings, on every write: one writer's, one write at
		// a time.
		warnings := &Warnings{}
		c.WarningHandler, c.WarningHandlerWithContext = nil, warnings
		wcs, err := kubernetes.NewForConfig(c)
		if err != nil {
			cancel()
			return nil, err
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.write(runCtx, wcs, warnings, w, interval)
		}()
	}
	return l, nil
}

func (l *Load) write(ctx context.Context, cs kubernetes.Interface, warnings *Warnings, writer int, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		name := fmt.Sprintf("w%d-%d", writer, i)
		// Each write gets its own deadline: a write cut by Stop is not one
		// the webhook failed.
		wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var err error
		warnings.Take()
		if i%2 == 0 {
			_, err = cs.AppsV1().StatefulSets(l.Namespace).Create(wctx, loadStatefulSet(l.Namespace, name), metav1.CreateOptions{})
		} else {
			_, err = cs.CoreV1().Secrets(l.Namespace).Create(wctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: l.Namespace, Name: name},
				StringData: map[string]string{"password": randomPassword()},
			}, metav1.CreateOptions{})
		}
		cancel()
		got := warnings.Take()
		kept := slices.IndexFunc(got, func(w string) bool { return strings.Contains(w, secretNotWritten) })
		l.mu.Lock()
		l.result.Writes++
		switch {
		case err != nil:
			l.result.Failed++
			if len(l.result.Errors) < 5 {
				l.result.Errors = append(l.result.Errors, err.Error())
			}
		case i%2 == 0:
			l.result.StatefulSets++
			if kept >= 0 {
				l.result.KeptLiteral = append(l.result.KeptLiteral, name)
				if len(l.result.KeptWarnings) < 2 {
					l.result.KeptWarnings = append(l.result.KeptWarnings, got[kept])
				}
			}
		default:
			l.result.Secrets++
		}
		l.mu.Unlock()
	}
}

// Stop stops the writers, waits for the writes in flight, and returns the
// counts.
func (l *Load) Stop() LoadResult {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.result
}

// loadStatefulSet is a StatefulSet of no replicas (no pods to run) with a
// strong literal password, which password-secret-ref moves into a Secret.
func loadStatefulSet(ns, name string) *appsv1.StatefulSet {
	sts := StatefulSet(ns, name, LoadService, "mysql:8.4")
	sts.Spec.Replicas = ptr.To[int32](0)
	lbl := map[string]string{"app": LoadService, "instance": name}
	sts.Spec.Selector.MatchLabels = lbl
	sts.Spec.Template.Labels = lbl
	sts.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: LoadPasswordEnv, Value: randomPassword()}}
	return sts
}

func randomPassword() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// LiteralPasswords returns the names of the StatefulSets of namespace that
// are stored with a literal LoadPasswordEnv: admitted without stsguard's
// mutating webhook.
func LiteralPasswords(ctx context.Context, cfg *rest.Config, namespace string) ([]string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	list, err := cs.AppsV1().StatefulSets(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, sts := range list.Items {
		for _, c := range sts.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.Name == LoadPasswordEnv && e.Value != "" {
					out = append(out, sts.Name)
				}
			}
		}
	}
	return out, nil
}

// WebhookCounts are the apiserver's counts of calls to stsguard's webhooks
// (those named *.stsguard.io) that did not end in stsguard's answer.
type WebhookCounts struct {
	// FailOpen is apiserver_admission_webhook_fail_open_count: calls that
	// failed and were ignored (failurePolicy Ignore): writes admitted
	// unjudged.
	FailOpen float64
	// CallErrors is apiserver_admission_webhook_rejection_count with
	// error_type calling_webhook_error or apiserver_internal_error: calls
	// that failed with failurePolicy Fail, writes refused because stsguard
	// could not be called.
	CallErrors float64
}

// Add returns c + d.
func (c WebhookCounts) Add(d WebhookCounts) WebhookCounts {
	return WebhookCounts{FailOpen: c.FailOpen + d.FailOpen, CallErrors: c.CallErrors + d.CallErrors}
}

// Sub returns c - d.
func (c WebhookCounts) Sub(d WebhookCounts) WebhookCounts {
	return WebhookCounts{FailOpen: c.FailOpen - d.FailOpen, CallErrors: c.CallErrors - d.CallErrors}
}

// ReadWebhookCounts reads WebhookCounts from g (APIServerMetrics).
func ReadWebhookCounts(g prometheus.Gatherer) (WebhookCounts, error) {
	families, err := g.Gather()
	if err != nil {
		return WebhookCounts{}, err
	}
	var out WebhookCounts
	for _, f := range families {
		switch f.GetName() {
		case "apiserver_admission_webhook_fail_open_count":
			out.FailOpen += sumStsguard(f, nil)
		case "apiserver_admission_webhook_rejection_count":
			out.CallErrors += sumStsguard(f, func(m *dto.Metric) bool {
				return label(m, "error_type") == "calling_webhook_error" || label(m, "error_type") == "apiserver_internal_error"
			})
		}
	}
	return out, nil
}

func sumStsguard(f *dto.MetricFamily, keep func(*dto.Metric) bool) float64 {
	var sum float64
	for _, m := range f.GetMetric() {
		if !strings.HasSuffix(label(m, "name"), ".stsguard.io") {
			continue
		}
		if keep != nil && !keep(m) {
			continue
		}
		sum += m.GetCounter().GetValue()
	}
	return sum
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
