package faults

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/stsguard/stsguard/test/harness"
)

// Rules DecisionsRight checks.
const (
	ruleWeakPassword       = "weak-password"
	ruleServiceMissing     = "headless-service-missing"
	ruleStorageClassAbsent = "storage-class-not-found"
)

// DecisionsRight checks, within timeout, that stsguard judges writes as it
// did before a fault, with caches that follow the API again:
//
//   - through the apiserver (its Service, either replica): a StatefulSet
//     with the password "password" is denied by weak-password; one naming a
//     Service that does not exist gets the headless-service-missing
//     warning; once that headless Service is created, one naming it does
//     not;
//   - on every ready replica, by an AdmissionReview sent to its pod
//     directly (TLS verified against the caBundle the apiserver uses, for
//     the Service's name): a StatefulSet whose volumeClaimTemplate names a
//     StorageClass that does not exist gets storage-class-not-found; once
//     the StorageClass is created, no replica warns. stsguard reads
//     StorageClasses from its informer cache alone (a missing Service or
//     Secret may be read live, which would hide a cache that no longer
//     watches), so a replica whose watch did not come back keeps warning.
//
// Each condition is polled until it holds; DecisionsRight returns how long
// the caches took to see the new Service and StorageClass, and an error
// naming the first condition that did not hold by timeout.
func (e *Env) DecisionsRight(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	c, warnings, err := harness.NewClient(e.Cluster.Config)
	if err != nil {
		return 0, err
	}
	ns := "decisions-" + rand.String(6)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return 0, err
	}
	defer func() {
		_ = c.Delete(context.WithoutCancel(ctx), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}()
	n := 0
	// create creates a StatefulSet (a new name each time) and returns the
	// rule IDs of the warnings or the denial it got, whether it was stored,
	// and what it got, for a message.
	create := func(ctx context.Context, sts *appsv1.StatefulSet) ([]string, bool, string) {
		n++
		sts.Name = fmt.Sprintf("%s-%d", sts.Name, n)
		sts.Spec.Replicas = ptr.To[int32](0) // no pod for a node to run
		warnings.Take()
		err := c.Create(ctx, sts)
		msgs := warnings.Take()
		if err != nil {
			msgs = append(msgs, err.Error())
		}
		ids := harness.RuleIDs(msgs...)
		return ids, err == nil, fmt.Sprintf("stored %v, rules %v: %s", err == nil, ids, strings.Join(msgs, " | "))
	}
	poll := func(what string, cond func(ctx context.Context) (bool, string, error)) error {
		var last string
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			ok, got, err := cond(ctx)
			switch {
			case err == nil:
				last = got
			case ctx.Err() == nil: // not the deadline cutting the last try short
				last = err.Error()
			}
			return ok, nil
		})
		if err != nil {
			return fmt.Errorf("%s: not within %s; last: %s", what, timeout, last)
		}
		return nil
	}

	if err := poll("a StatefulSet with the password \"password\" denied by "+ruleWeakPassword, func(ctx context.Context) (bool, string, error) {
		sts := harness.StatefulSet(ns, "weak", "weak", "mysql:8.4")
		sts.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MYSQL_ROOT_PASSWORD", Value: "password"}}
		ids, stored, got := create(ctx, sts)
		return !stored && slices.Contains(ids, ruleWeakPassword), got, nil
	}); err != nil {
		return 0, err
	}
	svc := "db-" + rand.String(5)
	if err := poll("a StatefulSet naming a missing Service warned by "+ruleServiceMissing, func(ctx context.Context) (bool, string, error) {
		ids, stored, got := create(ctx, harness.StatefulSet(ns, "before", svc, "nginx:1.27"))
		return stored && slices.Contains(ids, ruleServiceMissing), got, nil
	}); err != nil {
		return 0, err
	}

	// The StorageClass, checked on every replica.
	sc := "faults-" + rand.String(6)
	cases, err := e.replicas(ctx)
	if err != nil {
		return 0, err
	}
	if err := poll("every replica warns "+ruleStorageClassAbsent+" for a missing StorageClass", func(ctx context.Context) (bool, string, error) {
		return e.everyReplica(ctx, cases, ns, sc, func(ids []string) bool { return slices.Contains(ids, ruleStorageClassAbsent) })
	}); err != nil {
		return 0, err
	}

	start := time.Now()
	if err := c.Create(ctx, harness.Service(ns, svc, corev1.ClusterIPNone, map[string]string{"app": "after"})); err != nil {
		return 0, err
	}
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: sc}, Provisioner: harness.Provisioner, AllowVolumeExpansion: ptr.To(true)}
	if err := c.Create(ctx, class); err != nil {
		return 0, err
	}
	defer func() { _ = c.Delete(context.WithoutCancel(ctx), class) }()
	if err := poll("a StatefulSet naming the Service once created is not warned "+ruleServiceMissing, func(ctx context.Context) (bool, string, error) {
		sts := harness.StatefulSet(ns, "after", svc, "nginx:1.27")
		ids, stored, got := create(ctx, sts)
		return stored && !slices.Contains(ids, ruleServiceMissing), got, nil
	}); err != nil {
		return 0, err
	}
	if err := poll("no replica warns "+ruleStorageClassAbsent+" once the StorageClass exists", func(ctx context.Context) (bool, string, error) {
		return e.everyReplica(ctx, cases, ns, sc, func(ids []string) bool { return !slices.Contains(ids, ruleStorageClassAbsent) })
	}); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// replica is one stsguard pod, reached at its address.
type replica struct {
	pod  string
	addr string // ip:port of its webhook server
}

// replicas returns stsguard's ready pods.
func (e *Env) replicas(ctx context.Context) ([]replica, error) {
	pods, err := e.CS.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []replica
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" || !podReady(&p) {
			continue
		}
		port := int32(0)
		for _, cp := range p.Spec.Containers[0].Ports {
			if cp.Name == "webhook" {
				port = cp.ContainerPort
			}
		}
		if port == 0 {
			return nil, fmt.Errorf("pod %s has no container port named webhook", p.Name)
		}
		out = append(out, replica{pod: p.Name, addr: net.JoinHostPort(p.Status.PodIP, strconv.Itoa(int(port)))})
	}
	if len(out) == 0 {
		return nil, errors.New("no ready stsguard replica")
	}
	return out, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// everyReplica sends each replica the review of a StatefulSet CREATE whose
// volumeClaimTemplate names StorageClass class, and reports whether ok
// holds of the rule IDs of every answer, with what each replica answered.
func (e *Env) everyReplica(ctx context.Context, replicas []replica, ns, class string, ok func([]string) bool) (bool, string, error) {
	all := true
	var got []string
	for _, r := range replicas {
		ids, err := e.Review(ctx, r.addr, storageClassStatefulSet(ns, class))
		if err != nil {
			return false, "", fmt.Errorf("replica %s: %w", r.pod, err)
		}
		all = all && ok(ids)
		got = append(got, fmt.Sprintf("%s: %v", r.pod, ids))
	}
	return all, strings.Join(got, "; "), nil
}

func storageClassStatefulSet(ns, class string) *appsv1.StatefulSet {
	sts := harness.StatefulSet(ns, "data-"+rand.String(5), "db", "nginx:1.27")
	sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To(class),
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}}
	return sts
}

// ServiceHost is the name the apiserver verifies stsguard's serving
// certificate for: its Service's.
const ServiceHost = Release + "." + Namespace + ".svc"

// ValidatePath is where stsguard's validating webhook for StatefulSets
// is served.
const ValidatePath = "/validate-apps-v1-statefulset"

// Review sends the AdmissionReview of a CREATE of sts to the stsguard
// replica at addr (ip:port) as the apiserver would: over TLS verified
// against the caBundle of the validating webhook configuration, for the
// Service's name. It returns the rule IDs of the answer's warnings and
// denial, or an error when the call or the TLS handshake fails.
func (e *Env) Review(ctx context.Context, addr string, sts *appsv1.StatefulSet) ([]string, error) {
	pool, err := e.caBundle(ctx)
	if err != nil {
		return nil, err
	}
	sts = sts.DeepCopy()
	sts.APIVersion, sts.Kind = "apps/v1", "StatefulSet"
	raw, err := json.Marshal(sts)
	if err != nil {
		return nil, err
	}
	gvk := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
	gvr := metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID(rand.String(16)), Kind: gvk, Resource: gvr, RequestKind: &gvk, RequestResource: &gvr,
			Namespace: sts.Namespace, Name: sts.Name, Operation: admissionv1.Create,
			UserInfo: authenticationv1.UserInfo{Username: "faults-test"}, Object: runtime.RawExtension{Raw: raw}, DryRun: ptr.To(false),
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: ServiceHost, MinVersion: tls.VersionTLS12},
	}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+ValidatePath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(out))
	}
	var answer admissionv1.AdmissionReview
	if err := json.Unmarshal(out, &answer); err != nil {
		return nil, err
	}
	if answer.Response == nil {
		return nil, fmt.Errorf("an AdmissionReview without a response: %s", out)
	}
	msgs := slices.Clone(answer.Response.Warnings)
	if r := answer.Response.Result; r != nil {
		msgs = append(msgs, r.Message)
	}
	return harness.RuleIDs(msgs...), nil
}

// caBundle returns the CAs the apiserver verifies stsguard with: the
// caBundle of the validating webhook configuration's first webhook.
func (e *Env) caBundle(ctx context.Context) (*x509.CertPool, error) {
	vw, err := e.CS.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, Release, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if len(vw.Webhooks) == 0 || len(vw.Webhooks[0].ClientConfig.CABundle) == 0 {
		return nil, errors.New("no caBundle in ValidatingWebhookConfiguration " + Release)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(vw.Webhooks[0].ClientConfig.CABundle) {
		return nil, errors.New("the caBundle holds no certificate")
	}
	return pool, nil
}
