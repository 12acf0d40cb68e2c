package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/stsguard/stsguard/test/harness"
)

// webhookConfigName is the name of stsguard's webhook configurations, as
// deploy/base (and so envtest) installs them.
const webhookConfigName = "stsguard"

// selectSide is the namespaceSelector of a side's webhooks.
func selectSide(name string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{sideLabel: name}}
}

// noopName renames one of stsguard's webhooks for the no-op webhook's copy.
func noopName(name string) string {
	return strings.TrimSuffix(name, "stsguard.io") + "noop.bench.stsguard.io"
}

// webhookSides narrows stsguard's webhooks to the stsguard side's namespace,
// and installs a copy of them, with the same rules, matchConditions,
// timeouts and CA, that sends the no-op side's namespace to noopAddr. It
// returns the URL paths of stsguard's webhooks, which the no-op webhook
// answers on.
func webhookSides(ctx context.Context, cs *kubernetes.Clientset, noopAddr string) ([]string, error) {
	var paths []string // of the webhooks' URLs
	redirect := func(cc *admissionregistrationv1.WebhookClientConfig) error {
		if cc.URL == nil {
			return fmt.Errorf("a webhook of %s has no clientConfig.url (envtest sets one)", webhookConfigName)
		}
		u, err := url.Parse(*cc.URL)
		if err != nil {
			return err
		}
		// envtest joins host and path with a slash of its own: "//mutate-...".
		u.Path = path.Clean(u.Path)
		if !slices.Contains(paths, u.Path) {
			paths = append(paths, u.Path)
		}
		u.Host = noopAddr
		s := u.String()
		cc.URL = &s
		return nil
	}

	mwc, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookConfigName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	noopM := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "bench-noop"}}
	for i := range mwc.Webhooks {
		mwc.Webhooks[i].NamespaceSelector = selectSide("stsguard")
		wh := *mwc.Webhooks[i].DeepCopy()
		wh.Name, wh.NamespaceSelector = noopName(wh.Name), selectSide("noop")
		if err := redirect(&wh.ClientConfig); err != nil {
			return nil, err
		}
		noopM.Webhooks = append(noopM.Webhooks, wh)
	}
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, mwc, metav1.UpdateOptions{}); err != nil {
		return nil, err
	}
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, noopM, metav1.CreateOptions{}); err != nil {
		return nil, err
	}

	vwc, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, webhookConfigName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	noopV := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "bench-noop"}}
	for i := range vwc.Webhooks {
		vwc.Webhooks[i].NamespaceSelector = selectSide("stsguard")
		wh := *vwc.Webhooks[i].DeepCopy()
		wh.Name, wh.NamespaceSelector = noopName(wh.Name), selectSide("noop")
		if err := redirect(&wh.ClientConfig); err != nil {
			return nil, err
		}
		noopV.Webhooks = append(noopV.Webhooks, wh)
	}
	if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Update(ctx, vwc, metav1.UpdateOptions{}); err != nil {
		return nil, err
	}
	if _, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, noopV, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	return paths, nil
}

// process is a webhook process the bench started.
type process struct {
	name, log string
	cmd       *exec.Cmd
	exited    chan struct{}
	err       error // set before exited is closed
	probeAddr string
}

// start starts cmd with its output in logPath; the process is killed if
// the bench dies.
func start(name string, cmd *exec.Cmd, logPath string) (*process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, log: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// exitedErr returns why the process exited, or nil while it runs.
func (p *process) exitedErr() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited (%v); log: %s", p.name, p.err, p.log)
	default:
		return nil
	}
}

// stop sends SIGTERM and waits up to 15 s, then kills the process.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// startNoop starts the no-op webhook on addr with the serving certificate in
// certDir, answering on paths, and waits until it serves.
func startNoop(ctx context.Context, bin, certDir, addr string, paths []string, logPath string) (*process, error) {
	probe, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"-cert-dir", certDir, "-addr", addr, "-probe-addr", probe}
	for _, wp := range paths {
		args = append(args, "-path", wp)
	}
	p, err := start("the no-op webhook", exec.Command(bin, args...), logPath)
	if err != nil {
		return nil, err
	}
	p.probeAddr = probe
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := p.exitedErr(); err != nil {
			return false, err
		}
		_, err := probeGet(ctx, probe, "/readyz")
		return err == nil, nil
	})
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("the no-op webhook did not become ready (log: %s): %w", logPath, err)
	}
	return p, nil
}

func probeGet(ctx context.Context, addr, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", path, resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

// probeStatefulSet is what waitJudged sends (dry run): stsguard and
// Kyverno's policies both deny its well-known default password.
func probeStatefulSet(ns string) *appsv1.StatefulSet {
	sts := harness.StatefulSet(ns, "probe", headlessService, "mysql:8.4")
	sts.Spec.Selector.MatchLabels = podLabels
	sts.Spec.Template.Labels = podLabels
	sts.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MYSQL_ROOT_PASSWORD", Value: "password"}}
	return sts
}

// waitJudged waits until side s's webhook judges the writes in its
// namespace: the no-op webhook has answered a review, stsguard and Kyverno
// deny probeStatefulSet (weak-password). The apiserver reads webhook
// configurations through an informer, so a new one takes a moment to apply.
func waitJudged(ctx context.Context, cs *kubernetes.Clientset, s *side, noop *process) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cs.AppsV1().StatefulSets(s.namespace).Create(ctx, probeStatefulSet(s.namespace), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if s.name == "noop" {
			if err != nil {
				last = err.Error()
				return false, nil
			}
			n, perr := probeGet(ctx, noop.probeAddr, "/reviews")
			if perr != nil {
				return false, perr
			}
			reviews, _ := strconv.Atoi(n)
			last = fmt.Sprintf("%d reviews answered", reviews)
			return reviews > 0, nil
		}
		if err == nil {
			last = "the probe StatefulSet was admitted"
			return false, nil
		}
		last = err.Error()
		// Denied by the side's rule, not failed on the way (a webhook
		// whose serving certificate is not there yet).
		return strings.Contains(last, "[rule: weak-password]") && !strings.Contains(last, "failed calling webhook"), nil
	})
	if err != nil {
		return fmt.Errorf("the %s side: %w: %s", s.name, errNotJudged, last)
	}
	return nil
}

// checkIsolation checks that each side's writes go through its own webhook
// only: probeStatefulSet is admitted without a webhook and through the no-op
// webhook, and denied by stsguard alone and by Kyverno alone.
func checkIsolation(ctx context.Context, cs *kubernetes.Clientset, sides []*side) error {
	for _, s := range sides {
		_, err := cs.AppsV1().StatefulSets(s.namespace).Create(ctx, probeStatefulSet(s.namespace), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		var ok bool
		switch s.name {
		case "none", "noop":
			ok = err == nil
		case "stsguard":
			ok = err != nil && strings.Contains(msg, "stsguard.io") && !strings.Contains(msg, "kyverno")
		case "kyverno":
			ok = err != nil && strings.Contains(msg, "kyverno") && !strings.Contains(msg, "stsguard.io")
		}
		if !ok {
			return fmt.Errorf("the %s side's probe went through another side's webhook: %q", s.name, msg)
		}
	}
	return nil
}
