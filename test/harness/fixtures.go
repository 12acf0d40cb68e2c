package harness

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// StatefulSet is a 3-replica StatefulSet that every rule but the pairing
// ones is happy with: it has a readinessProbe and no volumeClaimTemplates.
func StatefulSet(ns, name, serviceName, image string) *appsv1.StatefulSet {
	lbl := map[string]string{"app": name}
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: serviceName,
			Replicas:    ptr.To[int32](3),
			Selector:    &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: image, ReadinessProbe: probe}}},
			},
		},
	}
}

// Service is a Service with one port 80 and selector; clusterIP "None"
// makes it headless.
func Service(ns, name, clusterIP string, selector map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			ClusterIP: clusterIP,
			Selector:  selector,
			Ports:     []corev1.ServicePort{{Name: "main", Port: 80}},
		},
	}
}

// Testdata returns the file test/testdata/<name>, one of the fixtures the
// test packages share, failing the test when it cannot be read.
func Testdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(), "test", "testdata", filepath.FromSlash(name)))
	require.NoError(t, err)
	return string(b)
}

// Web returns the fixture web in namespace ns, typed, for a test to adjust:
// the headless Service web (test/testdata/web/service.yaml) and the
// StatefulSet web that it governs (test/testdata/web/statefulset.yaml: one
// nginx:1.26 container with a readinessProbe, no volumeClaimTemplates),
// which every rule accepts.
func Web(t testing.TB, ns string) (*corev1.Service, *appsv1.StatefulSet) {
	t.Helper()
	var svc *corev1.Service
	var sts *appsv1.StatefulSet
	for _, file := range []string{"web/service.yaml", "web/statefulset.yaml"} {
		objs, err := Decode(strings.NewReader(Testdata(t, file)))
		require.NoError(t, err, file)
		require.Len(t, objs, 1, file)
		switch o := objs[0].(type) {
		case *corev1.Service:
			svc = o
		case *appsv1.StatefulSet:
			sts = o
		}
		objs[0].SetNamespace(ns)
	}
	require.NotNil(t, svc, "test/testdata/web/service.yaml holds no Service")
	require.NotNil(t, sts, "test/testdata/web/statefulset.yaml holds no StatefulSet")
	return svc, sts
}

// InvalidCauses asserts that err is a 422 Invalid status of a StatefulSet
// naming rule, and returns its causes' fields.
func InvalidCauses(t *testing.T, err error, rule string) []string {
	t.Helper()
	require.Error(t, err)
	require.True(t, apierrors.IsInvalid(err), "want a 422 Invalid status, got %v", err)
	assert.Contains(t, err.Error(), "[rule: "+rule+"]")
	var status apierrors.APIStatus
	require.True(t, errors.As(err, &status))
	require.NotNil(t, status.Status().Details)
	assert.Equal(t, "StatefulSet", status.Status().Details.Kind)
	var fields []string
	for _, c := range status.Status().Details.Causes {
		fields = append(fields, c.Field)
	}
	return fields
}

// Eventually polls cond every 50 ms until it holds, failing the test after
// timeout (default 10 s). stsguard reads objects from its informer cache,
// which sees an object a moment after the API has it, and controllers act
// a moment after that.
func Eventually(t *testing.T, what string, cond func() bool, timeout ...time.Duration) {
	t.Helper()
	limit := 10 * time.Second
	if len(timeout) > 0 {
		limit = timeout[0]
	}
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, limit, true,
		func(context.Context) (bool, error) { return cond(), nil })
	require.NoError(t, err, "waiting for %s", what)
}

// Namespace creates a fresh namespace for one test, named after it.
func Namespace(t *testing.T, c client.Client) string {
	t.Helper()
	name := "t-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.Trim(name, "-_") + "-" + rand.String(5)
	name = strings.ReplaceAll(name, "_", "-")
	require.NoError(t, c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	return name
}

// KubectlResult is what one kubectl run printed and how it exited.
type KubectlResult struct {
	Stdout, Stderr string
	// ExitCode is kubectl's exit code (0: success).
	ExitCode int
}

// Warnings returns the "Warning: " lines kubectl printed on stderr, without
// the prefix.
func (r KubectlResult) Warnings() []string {
	var out []string
	for _, l := range strings.Split(r.Stderr, "\n") {
		if w, ok := strings.CutPrefix(l, "Warning: "); ok {
			out = append(out, w)
		}
	}
	return out
}

// RunKubectl runs bin/k8s/kubectl (see Kubectl) with args against
// kubeconfig, stdin as its standard input (may be empty), and returns what
// it printed. The error is only for a kubectl that could not be run; a
// kubectl that ran and failed has a non-zero ExitCode.
func RunKubectl(kubeconfig, stdin string, args ...string) (KubectlResult, error) {
	k, err := Kubectl()
	if err != nil {
		return KubectlResult{}, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(k, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	res := KubectlResult{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
	case err != nil:
		return res, err
	}
	return res, nil
}

// BuildStsguard builds cmd/stsguard into a temporary directory of t and
// returns its path, for tests that run the stsguard command as users do.
func BuildStsguard(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stsguard")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/stsguard")
	cmd.Dir = Root()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// ruleTag finds the "[rule: ID]" tags of stsguard's messages.
var ruleTag = regexp.MustCompile(`\[rule: ([a-z0-9-]+)\]`)

// RuleIDs returns the rule IDs tagged in msgs, sorted, each once; nil for
// none.
func RuleIDs(msgs ...string) []string {
	ids := sets.New[string]()
	for _, m := range msgs {
		for _, sub := range ruleTag.FindAllStringSubmatch(m, -1) {
			ids.Insert(sub[1])
		}
	}
	if ids.Len() == 0 {
		return nil
	}
	return sets.List(ids)
}
