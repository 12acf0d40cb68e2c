package deploy

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stsguard/stsguard/policy"
	"github.com/stsguard/stsguard/server"
	"github.com/stsguard/stsguard/test/harness"
	"github.com/stsguard/stsguard/webhook"
)

// overlays are the directories under deploy/ a user applies.
var overlays = []string{"cert-manager", "self-signed"}

// rendered is `kubectl kustomize deploy/<overlay>` decoded into client-go's
// and cert-manager's types.
type rendered struct {
	objs []client.Object
}

func render(t *testing.T, overlay string) *rendered {
	t.Helper()
	out, err := harness.Render(overlay)
	require.NoError(t, err)
	objs, err := harness.DecodeWith(deployScheme(t), bytes.NewReader(out))
	require.NoError(t, err, "deploy/%s", overlay)
	return &rendered{objs: objs}
}

// deployScheme holds client-go's types and cert-manager's.
func deployScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	require.NoError(t, cmv1.AddToScheme(scheme))
	return scheme
}

// one returns the only object of type T named name; the test fails when
// there is none.
func one[T client.Object](t *testing.T, r *rendered, name string) T {
	t.Helper()
	for _, o := range r.objs {
		if x, ok := o.(T); ok && o.GetName() == name {
			return x
		}
	}
	var zero T
	require.Failf(t, "object missing", "no %T named %q in the rendered manifests", zero, name)
	return zero
}

func all[T client.Object](r *rendered) []T {
	var out []T
	for _, o := range r.objs {
		if x, ok := o.(T); ok {
			out = append(out, x)
		}
	}
	return out
}

// arg returns the value of --name=value in args, and whether it is there.
func arg(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name {
			return "", true
		}
	}
	return "", false
}

func container(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	require.Len(t, d.Spec.Template.Spec.Containers, 1)
	return d.Spec.Template.Spec.Containers[0]
}

func portNamed(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	require.Failf(t, "port missing", "container %s has no port named %q", c.Name, name)
	return 0
}

// Every overlay renders the base in full: namespaced objects in
// stsguard-system, a Deployment that is highly available and meets the
// restricted Pod Security Standard, and webhook configurations that point
// at the Service and keep stsguard out of its own way.
func TestEveryOverlayRendersTheBase(t *testing.T) {
	for _, overlay := range append([]string{"base"}, overlays...) {
		t.Run(overlay, func(t *testing.T) {
			r := render(t, overlay)
			for _, o := range r.objs {
				switch o.(type) {
				case *corev1.Namespace, *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding,
					*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration:
					assert.Empty(t, o.GetNamespace(), "%T %s is cluster-scoped", o, o.GetName())
				default:
					assert.Equal(t, "stsguard-system", o.GetNamespace(), "%T %s", o, o.GetName())
				}
			}
			ns := one[*corev1.Namespace](t, r, "stsguard-system")
			assert.Equal(t, "restricted", ns.Labels["pod-security.kubernetes.io/enforce"])

			d := one[*appsv1.Deployment](t, r, "stsguard")
			checkDeployment(t, r, d)
			checkWebhooks(t, r, d)
		})
	}
}

func checkDeployment(t *testing.T, r *rendered, d *appsv1.Deployment) {
	pod := d.Spec.Template
	podLabels := labels.Set(pod.Labels)
	assert.EqualValues(t, 2, *d.Spec.Replicas)
	assert.EqualValues(t, 0, d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue(), "a rollout must not take a replica away before its successor is ready")

	// Replicas on different nodes.
	require.NotNil(t, pod.Spec.Affinity)
	require.NotNil(t, pod.Spec.Affinity.PodAntiAffinity)
	terms := pod.Spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
	require.NotEmpty(t, terms)
	assert.Equal(t, corev1.LabelHostname, terms[0].PodAffinityTerm.TopologyKey)
	sel, err := metav1.LabelSelectorAsSelector(terms[0].PodAffinityTerm.LabelSelector)
	require.NoError(t, err)
	assert.True(t, sel.Matches(podLabels), "anti-affinity must select stsguard's own pods")

	// One replica survives voluntary disruptions.
	pdb := one[*policyv1.PodDisruptionBudget](t, r, "stsguard")
	assert.Equal(t, intstr.FromInt32(1), *pdb.Spec.MinAvailable)
	sel, err = metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	require.NoError(t, err)
	assert.True(t, sel.Matches(podLabels), "the PodDisruptionBudget must select the Deployment's pods")

	c := container(t, d)
	// Probes on the port stsguard serves them on: readiness is /readyz
	// (informer cache synced, certificate loaded), liveness /healthz.
	probes, ok := arg(c.Args, "health-probe-bind-address")
	require.True(t, ok)
	require.NotNil(t, c.ReadinessProbe)
	require.NotNil(t, c.LivenessProbe)
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		assert.Equal(t, ":"+fmt.Sprint(portNamed(t, c, p.HTTPGet.Port.String())), probes)
	}
	port, ok := arg(c.Args, "port")
	require.True(t, ok)
	assert.Equal(t, port, fmt.Sprint(portNamed(t, c, "webhook")))

	// Requests and limits.
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := c.Resources.Requests[res], c.Resources.Limits[res]
		assert.False(t, req.IsZero(), "requests.%s", res)
		assert.False(t, lim.IsZero(), "limits.%s", res)
	}

	// Restricted Pod Security (the apiserver's own check is in
	// TestRenderedBaseInstallsAndRunsAsItsServiceAccount).
	psc, sc := pod.Spec.SecurityContext, c.SecurityContext
	require.NotNil(t, psc)
	require.NotNil(t, sc)
	assert.True(t, *psc.RunAsNonRoot)
	assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type)
	assert.True(t, *sc.ReadOnlyRootFilesystem)
	assert.False(t, *sc.AllowPrivilegeEscalation)
	assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
	assert.Empty(t, sc.Capabilities.Add)

	// The ServiceAccount and the policy file exist.
	sa := one[*corev1.ServiceAccount](t, r, pod.Spec.ServiceAccountName)
	assert.Equal(t, "stsguard", sa.Name)
	cfg, ok := arg(c.Args, "config")
	require.True(t, ok)
	cm := one[*corev1.ConfigMap](t, r, volumeSource(t, d, mountOf(t, c, cfg)).ConfigMap.Name)
	data, ok := cm.Data[cfg[strings.LastIndex(cfg, "/")+1:]]
	require.True(t, ok, "ConfigMap %s has no key for --config=%s", cm.Name, cfg)
	_, err = policy.Parse([]byte(data))
	assert.NoError(t, err, "the shipped policy must load")

	// The Service sends 443 to the webhook port.
	svc := one[*corev1.Service](t, r, "stsguard")
	assert.True(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels))
	require.Len(t, svc.Spec.Ports, 1)
	assert.EqualValues(t, 443, svc.Spec.Ports[0].Port)
	assert.Equal(t, intstr.FromString("webhook"), svc.Spec.Ports[0].TargetPort)
}

// mountOf returns the volume name mounted at the directory holding path.
func mountOf(t *testing.T, c corev1.Container, path string) string {
	t.Helper()
	dir := path[:strings.LastIndex(path, "/")]
	for _, m := range c.VolumeMounts {
		if m.MountPath == dir || m.MountPath == path {
			return m.Name
		}
	}
	require.Failf(t, "mount missing", "nothing is mounted at %s", dir)
	return ""
}

func volumeSource(t *testing.T, d *appsv1.Deployment, name string) corev1.VolumeSource {
	t.Helper()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v.VolumeSource
		}
	}
	require.Failf(t, "volume missing", "no volume %q", name)
	return corev1.VolumeSource{}
}

func checkWebhooks(t *testing.T, r *rendered, d *appsv1.Deployment) {
	svc := one[*corev1.Service](t, r, "stsguard")
	sa := d.Spec.Template.Spec.ServiceAccountName
	served := sets.KeySet((&webhook.Handlers{}).Webhooks())
	type common struct {
		name       string
		cc         admissionregistrationv1.WebhookClientConfig
		ns         *metav1.LabelSelector
		conditions []admissionregistrationv1.MatchCondition
		failure    *admissionregistrationv1.FailurePolicyType
		timeout    *int32
		sideEffect *admissionregistrationv1.SideEffectClass
	}
	var hooks []common
	mutating, validating := harness.WebhookConfigurations(r.objs)
	require.Len(t, mutating, 1)
	require.Len(t, validating, 1)
	for _, w := range mutating[0].Webhooks {
		hooks = append(hooks, common{w.Name, w.ClientConfig, w.NamespaceSelector, w.MatchConditions, w.FailurePolicy, w.TimeoutSeconds, w.SideEffects})
	}
	for _, w := range validating[0].Webhooks {
		hooks = append(hooks, common{w.Name, w.ClientConfig, w.NamespaceSelector, w.MatchConditions, w.FailurePolicy, w.TimeoutSeconds, w.SideEffects})
	}
	paths := sets.New[string]()
	for _, h := range hooks {
		if h.cc.Service != nil && h.cc.Service.Path != nil {
			paths.Insert(*h.cc.Service.Path)
		}
	}
	assert.Equal(t, sets.List(served), sets.List(paths), "every path stsguard serves has a webhook, and no webhook calls another")
	for _, h := range hooks {
		t.Run(h.name, func(t *testing.T) {
			require.NotNil(t, h.cc.Service)
			assert.Equal(t, svc.Name, h.cc.Service.Name)
			assert.Equal(t, svc.Namespace, h.cc.Service.Namespace)
			assert.Equal(t, svc.Spec.Ports[0].Port, *h.cc.Service.Port)
			assert.True(t, served.Has(*h.cc.Service.Path), "stsguard serves no %s", *h.cc.Service.Path)
			require.NotNil(t, h.timeout)
			assert.LessOrEqual(t, *h.timeout, int32(5))
			assert.NotNil(t, h.failure, "failurePolicy must be stated")
			assert.NotNil(t, h.sideEffect)
			sel, err := metav1.LabelSelectorAsSelector(h.ns)
			require.NoError(t, err)
			for _, ns := range []string{"kube-system", "stsguard-system"} {
				assert.False(t, sel.Matches(labels.Set{corev1.LabelMetadataName: ns}), "namespace %s must be excluded", ns)
			}
			assert.True(t, sel.Matches(labels.Set{corev1.LabelMetadataName: "default"}))
		})
	}
	checkMatchConditions(t, r, d.Namespace, sa)
}

// The least the rules need: read what the informers cache, and create and
// patch Secrets for password-secret-ref. Nothing else, cluster-wide.
func TestClusterRoleIsTheLeastTheRulesNeed(t *testing.T) {
	r := render(t, "base")
	cr := one[*rbacv1.ClusterRole](t, r, "stsguard")
	got := map[string][]string{}
	for _, rule := range cr.Rules {
		assert.Empty(t, rule.ResourceNames)
		assert.Empty(t, rule.NonResourceURLs)
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				got[g+"/"+res] = append(got[g+"/"+res], rule.Verbs...)
			}
		}
	}
	read := []string{"get", "list", "watch"}
	assert.Equal(t, map[string][]string{
		"/services":                     read,
		"/namespaces":                   read,
		"/persistentvolumeclaims":       read,
		"/secrets":                      append(slices.Clone(read), "create", "patch"),
		"apps/statefulsets":             read,
		"storage.k8s.io/storageclasses": read,
	}, got)
	crb := one[*rbacv1.ClusterRoleBinding](t, r, "stsguard")
	assert.Equal(t, cr.Name, crb.RoleRef.Name)
	assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "stsguard", Namespace: "stsguard-system"}}, crb.Subjects)
}

// cert-manager issues the serving certificate for the Service's names into
// the Secret the Deployment mounts at --cert-dir, from a CA of its own, and
// injects that CA into both webhook configurations.
func TestCertManagerOverlay(t *testing.T) {
	r := render(t, "cert-manager")
	svc := one[*corev1.Service](t, r, "stsguard")
	d := one[*appsv1.Deployment](t, r, "stsguard")
	c := container(t, d)

	certs := all[*cmv1.Certificate](r)
	require.Len(t, certs, 2)
	serving := one[*cmv1.Certificate](t, r, "stsguard-serving-cert")
	assert.ElementsMatch(t, []string{
		fmt.Sprintf("%s.%s.svc", svc.Name, svc.Namespace),
		fmt.Sprintf("%s.%s.svc.cluster.local", svc.Name, svc.Namespace),
	}, serving.Spec.DNSNames)
	assert.ElementsMatch(t, server.DefaultDNSNames(), serving.Spec.DNSNames, "stsguard's own default names are the Service's")
	assert.Contains(t, serving.Spec.Usages, cmv1.UsageServerAuth)
	assert.False(t, serving.Spec.IsCA)
	require.NotNil(t, serving.Spec.RenewBefore)
	assert.Less(t, serving.Spec.RenewBefore.Duration, serving.Spec.Duration.Duration)

	// The Secret cert-manager writes is the one mounted at --cert-dir.
	dir, ok := arg(c.Args, "cert-dir")
	require.True(t, ok)
	_, manage := arg(c.Args, "manage-certs")
	assert.False(t, manage)
	var mounted string
	for _, m := range c.VolumeMounts {
		if m.MountPath == dir {
			mounted = m.Name
		}
	}
	require.NotEmpty(t, mounted, "nothing mounted at --cert-dir=%s", dir)
	vs := volumeSource(t, d, mounted)
	require.NotNil(t, vs.Secret)
	assert.Equal(t, serving.Spec.SecretName, vs.Secret.SecretName)
	assert.Equal(t, server.DefaultCertSecret, serving.Spec.SecretName)

	// Issuer chain: serving <- CA Issuer <- CA Certificate <- selfSigned Issuer.
	caIssuer := one[*cmv1.Issuer](t, r, serving.Spec.IssuerRef.Name)
	assert.Equal(t, "Issuer", serving.Spec.IssuerRef.Kind)
	require.NotNil(t, caIssuer.Spec.CA)
	var ca *cmv1.Certificate
	for _, x := range certs {
		if x.Spec.SecretName == caIssuer.Spec.CA.SecretName {
			ca = x
		}
	}
	require.NotNil(t, ca, "no Certificate writes the CA Issuer's Secret %s", caIssuer.Spec.CA.SecretName)
	assert.True(t, ca.Spec.IsCA)
	root := one[*cmv1.Issuer](t, r, ca.Spec.IssuerRef.Name)
	assert.NotNil(t, root.Spec.SelfSigned)
	assert.Greater(t, ca.Spec.Duration.Duration, serving.Spec.Duration.Duration)

	// The CA reaches both webhook configurations.
	want := serving.Namespace + "/" + serving.Name
	mutating, validating := harness.WebhookConfigurations(r.objs)
	for _, o := range []client.Object{mutating[0], validating[0]} {
		assert.Equal(t, want, o.GetAnnotations()["cert-manager.io/inject-ca-from"], "%T", o)
	}
}

// The self-signed overlay runs --manage-certs, mounts no certificate, and
// grants exactly what the certificate manager writes.
func TestSelfSignedOverlay(t *testing.T) {
	r := render(t, "self-signed")
	d := one[*appsv1.Deployment](t, r, "stsguard")
	c := container(t, d)
	_, manage := arg(c.Args, "manage-certs")
	assert.True(t, manage)
	_, dir := arg(c.Args, "cert-dir")
	assert.False(t, dir, "--cert-dir is not used with --manage-certs")
	for _, v := range d.Spec.Template.Spec.Volumes {
		assert.Nil(t, v.Secret, "volume %s: --manage-certs reads its Secret through the API", v.Name)
	}
	mutating, validating := harness.WebhookConfigurations(r.objs)
	for _, o := range []client.Object{mutating[0], validating[0]} {
		assert.NotContains(t, o.GetAnnotations(), "cert-manager.io/inject-ca-from")
		assert.Equal(t, "stsguard", o.GetName(), "--webhook-configuration-name defaults to stsguard")
	}
	role := one[*rbacv1.Role](t, r, "stsguard-manage-certs")
	assert.Equal(t, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{server.DefaultCertSecret}, Verbs: []string{"update"}},
	}, role.Rules)
	cr := one[*rbacv1.ClusterRole](t, r, "stsguard-manage-certs")
	assert.Equal(t, []rbacv1.PolicyRule{{
		APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"},
		ResourceNames: []string{"stsguard"}, Verbs: []string{"get", "list", "watch", "update"},
	}}, cr.Rules)
}
