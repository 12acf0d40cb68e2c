package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stsguard/stsguard/test/harness"
)

// Kyverno's namespace and the names its admission controller reads from
// the environment (cmd/internal/check.go requires each).
const kyvernoNamespace = "kyverno"

var kyvernoEnv = []string{
	"KYVERNO_NAMESPACE=" + kyvernoNamespace,
	"KYVERNO_SERVICEACCOUNT_NAME=kyverno-admission-controller",
	"KYVERNO_ROLE_NAME=kyverno:admission-controller",
	"KYVERNO_DEPLOYMENT=kyverno-admission-controller",
	"KYVERNO_POD_NAME=kyverno-admission-controller-bench",
	"KYVERNO_SVC=kyverno-svc",
	"INIT_CONFIG=kyverno",
	"METRICS_CONFIG=kyverno-metrics",
}

// kyvernoConfig is the data of ConfigMap kyverno: its webhooks select only
// the Kyverno side's namespaces, and the resource filters are the chart's
// (Events, the system namespaces and Kyverno's own resources are never
// sent to it).
func kyvernoConfig() map[string]string {
	return map[string]string{
		"webhooks": fmt.Sprintf(`{"namespaceSelector":{"matchLabels":{%q:"kyverno"}}}`, sideLabel),
		"resourceFilters": "[Event,*,*][*/*,kube-system,*][*/*,kube-public,*][*/*,kube-node-lease,*][Node,*,*][Node/*,*,*]" +
			"[APIService,*,*][APIService/*,*,*][TokenReview,*,*][SubjectAccessReview,*,*][SelfSubjectAccessReview,*,*]" +
			"[Binding,*,*][Pod/binding,*,*][ReplicaSet,*,*][ReplicaSet/*,*,*][EphemeralReport,*,*][ClusterEphemeralReport,*,*]" +
			"[*/*," + kyvernoNamespace + ",*]",
	}
}

// kyvernoPort is where Kyverno's webhook server must listen: out of cluster
// it registers its webhooks as https://<serverIP>/<path>, port 443 whatever
// --servicePort says.
const kyvernoPort = 443

// startKyverno installs Kyverno's CRDs, its namespace and ConfigMaps, starts
// its admission controller out of cluster on 127.0.0.1:443 with the admin
// kubeconfig, and creates the policies of c.policies once it accepts them.
// Admission reports are off (--admissionReports=false): no reports
// controller runs here to aggregate them, and they would cost the apiserver
// a write per admission request.
func startKyverno(ctx context.Context, c config, cfg *rest.Config, kubeconfig, dir string) (*process, error) {
	if err := installCRDs(cfg, c.kyvernoCRDs); err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kyvernoNamespace}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	for name, data := range map[string]map[string]string{"kyverno": kyvernoConfig(), "kyverno-metrics": {}} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: kyvernoNamespace, Name: name}, Data: data}
		if _, err := cs.CoreV1().ConfigMaps(kyvernoNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
	}
	metrics, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	crMetrics, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.kyverno,
		"--kubeconfig="+kubeconfig,
		"--serverIP=127.0.0.1",
		"--webhookServerHost=127.0.0.1",
		fmt.Sprintf("--webhookServerPort=%d", kyvernoPort),
		"--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca",
		"--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair",
		"--metricsHost=127.0.0.1",
		"--metricsPort="+portOf(metrics),
		"--controllerRuntimeMetricsAddress="+crMetrics,
		"--admissionReports=false",
		"--disableLogColor",
	)
	cmd.Env = append(os.Environ(), kyvernoEnv...)
	logPath := filepath.Join(dir, "kyverno.log")
	p, err := start("kyverno", cmd, logPath)
	if err != nil {
		return nil, err
	}
	if err := applyPolicies(ctx, cfg, c.policies, p); err != nil {
		p.stop()
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return p, nil
}

func portOf(addr string) string { return fmt.Sprint(harness.Port(addr)) }

// installCRDs installs the CRDs of each directory under root (config/crds
// holds one per API group) and waits until they are served.
func installCRDs(cfg *rest.Config, root string) error {
	entries, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("the CRDs of Kyverno: %w (hack/peers/build.sh copies Kyverno's module there)", err)
	}
	var paths []string
	for _, e := range entries {
		if e.IsDir() {
			paths = append(paths, filepath.Join(root, e.Name()))
		}
	}
	_, err = envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{Paths: paths, ErrorIfPathMissing: true})
	return err
}

// brokenPolicy is a ValidatingPolicy whose validation is not a boolean:
// Kyverno's webhook that validates policies denies it.
const brokenPolicy = `{"apiVersion":"policies.kyverno.io/v1","kind":"ValidatingPolicy","metadata":{"name":"bench-probe"},
"spec":{"matchConstraints":{"resourceRules":[{"apiGroups":[""],"apiVersions":["v1"],"operations":["CREATE"],"resources":["configmaps"]}]},
"validations":[{"expression":"1"}]}}`

// waitPolicyValidation waits until Kyverno's webhook that compiles policies
// answers (it denies brokenPolicy, sent as a dry run): a policy created
// before would be stored unchecked, reported Ready, and skipped at
// admission if it does not compile.
func waitPolicyValidation(ctx context.Context, dyn dynamic.Interface, p *process) error {
	probe := &unstructured.Unstructured{}
	if err := probe.UnmarshalJSON([]byte(brokenPolicy)); err != nil {
		return err
	}
	gvr := schema.GroupVersionResource{Group: "policies.kyverno.io", Version: "v1", Resource: "validatingpolicies"}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := p.exitedErr(); err != nil {
			return false, err
		}
		_, err := dyn.Resource(gvr).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil {
			last = "a policy that does not compile was accepted"
			return false, nil
		}
		last = err.Error()
		return strings.Contains(last, "denied the request") && !strings.Contains(last, "failed calling webhook"), nil
	})
	if err != nil {
		return fmt.Errorf("the policy validation of Kyverno: %w (%s)", err, last)
	}
	return nil
}

// readObjects decodes every YAML document of path, a file or the .yaml
// files of a directory (in name order).
func readObjects(path string) ([]*unstructured.Unstructured, error) {
	files := []string{path}
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if fi.IsDir() {
		if files, err = filepath.Glob(filepath.Join(path, "*.yaml")); err != nil {
			return nil, err
		}
	}
	var out []*unstructured.Unstructured
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			u := &unstructured.Unstructured{}
			if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(doc), len(doc)).Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					continue
				}
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			out = append(out, u)
		}
	}
	return out, nil
}

// applyPolicies creates the policies of dir, retrying while Kyverno starts
// (its webhook that validates policies may not answer yet), and waits until
// each reports Ready.
func applyPolicies(ctx context.Context, cfg *rest.Config, dir string, p *process) error {
	objs, err := readObjects(dir)
	if err != nil {
		return err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandlerWithContext = rest.NoWarnings{} // the probe's, expected
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := waitPolicyValidation(ctx, dyn, p); err != nil {
		return err
	}
	for _, o := range objs {
		var last error
		err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
			if err := p.exitedErr(); err != nil {
				return false, err
			}
			m, err := mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
			if err != nil {
				mapper.Reset()
				last = err
				return false, nil
			}
			_, err = dyn.Resource(m.Resource).Create(ctx, o, metav1.CreateOptions{})
			if err == nil || apierrors.IsAlreadyExists(err) {
				return true, nil
			}
			if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || strings.Contains(err.Error(), "denied the request") {
				return false, err // the policy is wrong: no retry mends it
			}
			last = err
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("creating %s %s: %w (last: %v)", o.GetKind(), o.GetName(), err, last)
		}
	}
	// Each policy reports Ready once Kyverno compiled it and its webhook is
	// configured.
	for _, o := range objs {
		m, err := mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
		if err != nil {
			return err
		}
		var last string
		err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
			if err := p.exitedErr(); err != nil {
				return false, err
			}
			got, err := dyn.Resource(m.Resource).Get(ctx, o.GetName(), metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditionStatus", "conditions")
			ready, _, _ := unstructured.NestedBool(got.Object, "status", "conditionStatus", "ready")
			last = fmt.Sprintf("ready %v, conditions %v", ready, conds)
			for _, c := range conds {
				if cm, ok := c.(map[string]any); ok && cm["status"] == string(metav1.ConditionFalse) {
					return false, fmt.Errorf("%s %s: %v", o.GetKind(), o.GetName(), cm["message"])
				}
			}
			return ready, nil
		})
		if err != nil {
			return fmt.Errorf("waiting for %s %s to be ready: %w (%s)", o.GetKind(), o.GetName(), err, last)
		}
	}
	return nil
}
