package deploy

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/cert"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/policy"
	"github.com/stsguard/stsguard/server"
	"github.com/stsguard/stsguard/test/harness"
	"github.com/stsguard/stsguard/webhook"
)

// helm lint --strict passes on the chart as shipped and with every values
// set of the matrix below (lint also checks the values against
// values.schema.json).
func TestChartLint(t *testing.T) {
	out, err := runHelm(t, "", "lint", "--strict", chartDir())
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "1 chart(s) linted, 0 chart(s) failed")
	for _, c := range chartMatrix(t) {
		t.Run(c.name, func(t *testing.T) {
			out, err := runHelm(t, "", "lint", "--strict", chartDir(), "--namespace", cmpOr(c.namespace, "stsguard-system"), "--values", valuesFile(t, c.values))
			require.NoError(t, err, "%s", out)
			assert.NotContains(t, string(out), "[WARNING]")
		})
	}
}

// chartCase is one values set of the matrix, with what it must render.
type chartCase struct {
	name, release, namespace string
	values                   map[string]any
	check                    func(t *testing.T, r *rendered)
}

// testCA returns the PEM of a self-signed certificate (and its CA).
func testCA(t *testing.T) string {
	t.Helper()
	crt, _, err := cert.GenerateSelfSignedCertKey("stsguard.stsguard-system.svc", nil, nil)
	require.NoError(t, err)
	return string(crt)
}

// examplePolicy is examples/policy.yaml as a value.
func examplePolicy(t *testing.T) (map[string]any, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(harness.Root(), "examples", "policy.yaml"))
	require.NoError(t, err)
	var p map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &p))
	return p, raw
}

func chartMatrix(t *testing.T) []chartCase {
	t.Helper()
	ca := testCA(t)
	examplePolicy, exampleFile := examplePolicy(t)
	meta := readChartMeta(t, must(os.ReadFile(filepath.Join(chartDir(), "Chart.yaml"))))
	return []chartCase{
		{name: "defaults", values: map[string]any{}, check: func(t *testing.T, r *rendered) {
			d := one[*appsv1.Deployment](t, r, "stsguard")
			c := container(t, d)
			assert.Equal(t, "ghcr.io/stsguard/stsguard:"+meta.AppVersion, c.Image, "image.tag defaults to appVersion")
			checkSelfManaged(t, r, "stsguard", "stsguard-system")
			assert.Empty(t, all[*cmv1.Certificate](r))
			for _, w := range chartWebhooks(r) {
				assert.Equal(t, admissionregistrationv1.Ignore, *w.failurePolicy, w.name)
				assert.EqualValues(t, 5, *w.timeout, w.name)
				assert.Equal(t, []string{"kube-system", "stsguard-system"}, w.ns.MatchExpressions[0].Values, w.name)
			}
			one[*corev1.Service](t, r, "stsguard-metrics")
			assert.Empty(t, all[*serviceMonitor](r))
			assert.Empty(t, all[*prometheusRule](r))
			assert.Len(t, all[*corev1.ConfigMap](r), 1, "the policy alone: no dashboard")
			cfg := chartPolicy(t, r, "stsguard")
			assert.Empty(t, cfg.Actions, "an empty policy keeps the defaults")
		}},
		{name: "cert-manager with its own CA", values: map[string]any{"certificates": map[string]any{"mode": "cert-manager"}}, check: func(t *testing.T, r *rendered) {
			checkCertDir(t, r, "stsguard-serving-cert", "")
			assert.Len(t, all[*cmv1.Issuer](r), 2)
			serving := one[*cmv1.Certificate](t, r, "stsguard-serving-cert")
			assert.ElementsMatch(t, server.DefaultDNSNames(), serving.Spec.DNSNames)
			assert.Equal(t, "stsguard-ca", serving.Spec.IssuerRef.Name)
			ca := one[*cmv1.Certificate](t, r, "stsguard-ca")
			assert.True(t, ca.Spec.IsCA)
			assert.Equal(t, "stsguard-selfsigned", ca.Spec.IssuerRef.Name)
			assert.NotNil(t, one[*cmv1.Issuer](t, r, "stsguard-selfsigned").Spec.SelfSigned)
			assert.Equal(t, "stsguard-ca", one[*cmv1.Issuer](t, r, "stsguard-ca").Spec.CA.SecretName)
			checkInjectedBy(t, r, "stsguard-system/stsguard-serving-cert")
		}},
		{name: "cert-manager with an existing ClusterIssuer", values: map[string]any{"certificates": map[string]any{
			"mode": "cert-manager", "certManager": map[string]any{"issuerRef": map[string]any{"name": "corp-ca", "kind": "ClusterIssuer"}, "duration": "720h", "renewBefore": "240h"},
		}}, check: func(t *testing.T, r *rendered) {
			checkCertDir(t, r, "stsguard-serving-cert", "")
			assert.Empty(t, all[*cmv1.Issuer](r), "the chart's own chain is not rendered")
			require.Len(t, all[*cmv1.Certificate](r), 1)
			serving := one[*cmv1.Certificate](t, r, "stsguard-serving-cert")
			assert.Equal(t, "corp-ca", serving.Spec.IssuerRef.Name)
			assert.Equal(t, "ClusterIssuer", serving.Spec.IssuerRef.Kind)
			assert.Equal(t, "cert-manager.io", serving.Spec.IssuerRef.Group)
			assert.Equal(t, "720h0m0s", serving.Spec.Duration.Duration.String())
			checkInjectedBy(t, r, "stsguard-system/stsguard-serving-cert")
		}},
		{name: "an existing Secret", values: map[string]any{"certificates": map[string]any{
			"mode": "secret", "secret": map[string]any{"name": "corp-tls", "caBundle": ca},
		}}, check: func(t *testing.T, r *rendered) {
			checkCertDir(t, r, "corp-tls", ca)
			assert.Empty(t, all[*cmv1.Certificate](r))
			checkInjectedBy(t, r, "")
		}},
		{name: "metrics off", values: map[string]any{"metrics": map[string]any{"enabled": false}}, check: func(t *testing.T, r *rendered) {
			c := container(t, one[*appsv1.Deployment](t, r, "stsguard"))
			addr, _ := arg(c.Args, "metrics-bind-address")
			assert.Equal(t, "0", addr, "no /metrics endpoint")
			assert.False(t, slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" }))
			assert.Len(t, all[*corev1.Service](r), 1, "the webhook Service alone")
		}},
		{name: "metrics, ServiceMonitor, PrometheusRule and dashboard on", values: map[string]any{
			"metrics": map[string]any{
				"port":           9090,
				"serviceMonitor": map[string]any{"enabled": true, "interval": "15s", "labels": map[string]any{"release": "kube-prometheus-stack"}},
				"prometheusRule": map[string]any{"enabled": true, "labels": map[string]any{"release": "kube-prometheus-stack"}},
			},
			"grafana": map[string]any{"dashboard": map[string]any{"enabled": true, "namespace": "monitoring", "annotations": map[string]any{"grafana_folder": "Platform"}}},
		}, check: func(t *testing.T, r *rendered) {
			c := container(t, one[*appsv1.Deployment](t, r, "stsguard"))
			addr, _ := arg(c.Args, "metrics-bind-address")
			assert.Equal(t, ":9090", addr)
			assert.EqualValues(t, 9090, portNamed(t, c, "metrics"))
			svc := one[*corev1.Service](t, r, "stsguard-metrics")
			sm := one[*serviceMonitor](t, r, "stsguard")
			assert.Equal(t, "kube-prometheus-stack", sm.Labels["release"])
			sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
			require.NoError(t, err)
			assert.True(t, sel.Matches(labels.Set(svc.Labels)), "the ServiceMonitor selects the metrics Service")
			assert.False(t, sel.Matches(labels.Set(one[*corev1.Service](t, r, "stsguard").Labels)), "and not the webhook Service")
			assert.Equal(t, []string{"stsguard-system"}, sm.Spec.NamespaceSelector.MatchNames)
			require.Len(t, sm.Spec.Endpoints, 1)
			assert.Equal(t, svc.Spec.Ports[0].Name, sm.Spec.Endpoints[0].Port)
			assert.Equal(t, "15s", sm.Spec.Endpoints[0].Interval)

			rule := one[*prometheusRule](t, r, "stsguard")
			assert.Equal(t, "kube-prometheus-stack", rule.Labels["release"])
			assert.Equal(t, deployPrometheusRuleSpec(t), ruleGroups(t, rule.Spec), "the same alerts as deploy/prometheus/prometheusrule.yaml")

			cm := one[*corev1.ConfigMap](t, r, "stsguard-dashboard")
			assert.Equal(t, "monitoring", cm.Namespace)
			assert.Equal(t, "1", cm.Labels["grafana_dashboard"])
			assert.Equal(t, "Platform", cm.Annotations["grafana_folder"])
			want, err := os.ReadFile(filepath.Join(chartDir(), "dashboards", "stsguard.json"))
			require.NoError(t, err)
			assert.Equal(t, strings.TrimSuffix(string(want), "\n"), cm.Data["stsguard.json"])
			assert.True(t, json.Valid([]byte(cm.Data["stsguard.json"])))
		}},
		{name: "background audit at its defaults", values: map[string]any{}, check: func(t *testing.T, r *rendered) {
			c := container(t, one[*appsv1.Deployment](t, r, "stsguard"))
			for _, flag := range []string{"background-audit", "background-audit-interval", "reports-api", "reports-max-results", "violations-namespace-label"} {
				_, ok := arg(c.Args, flag)
				assert.False(t, ok, "--%s: stsguard's default", flag)
			}
			role := one[*rbacv1.Role](t, r, "stsguard-background-audit")
			assert.Equal(t, []rbacv1.PolicyRule{
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{"stsguard-background-audit"}, Verbs: []string{"get", "update"}},
			}, role.Rules)
			cr := one[*rbacv1.ClusterRole](t, r, "stsguard-background-audit")
			assert.Equal(t, []rbacv1.PolicyRule{{APIGroups: []string{"wgpolicyk8s.io"}, Resources: []string{"policyreports"}, Verbs: []string{"get", "list", "create", "update", "delete"}}}, cr.Rules)
			one[*rbacv1.RoleBinding](t, r, "stsguard-background-audit")
			one[*rbacv1.ClusterRoleBinding](t, r, "stsguard-background-audit")
			assert.Empty(t, all[*apiextensionsv1.CustomResourceDefinition](r), "the CRDs only when asked")
		}},
		{name: "background audit off", values: map[string]any{"backgroundAudit": map[string]any{"enabled": false, "installCRDs": true}}, check: func(t *testing.T, r *rendered) {
			c := container(t, one[*appsv1.Deployment](t, r, "stsguard"))
			assert.Equal(t, "false", argValue(c.Args, "background-audit"))
			for _, role := range all[*rbacv1.Role](r) {
				assert.NotEqual(t, "stsguard-background-audit", role.Name)
			}
			for _, cr := range all[*rbacv1.ClusterRole](r) {
				assert.NotEqual(t, "stsguard-background-audit", cr.Name)
			}
			assert.Empty(t, all[*apiextensionsv1.CustomResourceDefinition](r))
		}},
		{name: "background audit into openreports.io, with its CRD", values: map[string]any{"backgroundAudit": map[string]any{
			"interval": "1h", "reportsAPI": "openreports.io/v1alpha1", "maxResults": 100, "namespaceLabel": true, "installCRDs": true,
		}}, check: func(t *testing.T, r *rendered) {
			c := container(t, one[*appsv1.Deployment](t, r, "stsguard"))
			assert.Equal(t, "1h", argValue(c.Args, "background-audit-interval"))
			assert.Equal(t, "openreports.io/v1alpha1", argValue(c.Args, "reports-api"))
			assert.Equal(t, "100", argValue(c.Args, "reports-max-results"))
			_, ok := arg(c.Args, "violations-namespace-label")
			assert.True(t, ok)
			cr := one[*rbacv1.ClusterRole](t, r, "stsguard-background-audit")
			assert.Equal(t, []rbacv1.PolicyRule{{APIGroups: []string{"openreports.io"}, Resources: []string{"reports"}, Verbs: []string{"get", "list", "create", "update", "delete"}}}, cr.Rules)
			crd := one[*apiextensionsv1.CustomResourceDefinition](t, r, "reports.openreports.io")
			assert.Equal(t, "keep", crd.Annotations["helm.sh/resource-policy"], "other tools' reports live in it too")
		}},
		{name: "custom policy", values: map[string]any{"policy": examplePolicy}, check: func(t *testing.T, r *rendered) {
			want, err := policy.Parse(exampleFile)
			require.NoError(t, err)
			got := chartPolicy(t, r, "stsguard")
			assert.Equal(t, want.Actions, got.Actions)
			assert.Equal(t, want.Mutations, got.Mutations)
			assert.Len(t, got.Exemptions, len(want.Exemptions))
			assert.Equal(t, want.Exemptions[0].Namespaces, got.Exemptions[0].Namespaces)
			assert.Equal(t, want.Exemptions[1].NamespaceSelector.String(), got.Exemptions[1].NamespaceSelector.String())
			assert.Equal(t, want.Exemptions[0].Rules, got.Exemptions[0].Rules)
			assert.Equal(t, want.Credentials.Profiles[0], got.Credentials.Profiles[0], "the cassandra profile of the example")
		}},
		{name: "policy with unquoted On and Off", values: map[string]any{"policy": map[string]any{
			// What YAML makes of `termination-grace-period: Off` and `rollout-partition: On`.
			"rules":     map[string]any{"readiness-probe-missing": false, "weak-password": "Warn"},
			"mutations": map[string]any{"termination-grace-period": false, "rollout-partition": true},
		}}, check: func(t *testing.T, r *rendered) {
			got := chartPolicy(t, r, "stsguard")
			assert.EqualValues(t, "Off", got.Actions["readiness-probe-missing"])
			assert.EqualValues(t, "Warn", got.Actions["weak-password"])
			assert.Equal(t, map[string]bool{"termination-grace-period": false, "rollout-partition": true}, got.Mutations)
		}},
		{name: "another release and namespace", release: "guard", namespace: "security", values: map[string]any{
			"webhooks": map[string]any{"excludedNamespaces": []string{"monitoring", "security"}},
		}, check: func(t *testing.T, r *rendered) {
			checkSelfManaged(t, r, "guard-stsguard", "security")
			for _, w := range chartWebhooks(r) {
				assert.Equal(t, []string{"kube-system", "security", "monitoring"}, w.ns.MatchExpressions[0].Values, w.name)
			}
		}},
		{name: "another release with cert-manager", release: "guard", namespace: "security", values: map[string]any{"certificates": map[string]any{"mode": "cert-manager"}}, check: func(t *testing.T, r *rendered) {
			checkCertDir(t, r, "guard-stsguard-serving-cert", "")
			serving := one[*cmv1.Certificate](t, r, "guard-stsguard-serving-cert")
			assert.ElementsMatch(t, []string{"guard-stsguard.security.svc", "guard-stsguard.security.svc.cluster.local"}, serving.Spec.DNSNames)
			checkInjectedBy(t, r, "security/guard-stsguard-serving-cert")
		}},
		{name: "scheduling, image and webhook settings", values: map[string]any{
			"replicaCount": 3,
			"image":        map[string]any{"repository": "registry.example/stsguard", "tag": "v9.9.9", "pullPolicy": "Always", "pullSecrets": []string{"regcred"}},
			"resources":    map[string]any{"requests": map[string]any{"cpu": "50m", "memory": "64Mi"}, "limits": map[string]any{"cpu": nil, "memory": "256Mi"}}, // null drops a default
			"nodeSelector": map[string]any{"node-role.kubernetes.io/infra": ""},
			"tolerations":  []any{map[string]any{"key": "infra", "operator": "Exists", "effect": "NoSchedule"}},
			"affinity": map[string]any{"podAntiAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": []any{map[string]any{
				"topologyKey": "kubernetes.io/hostname", "labelSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "stsguard"}},
			}}}},
			"topologySpreadConstraints": []any{map[string]any{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
				"labelSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "stsguard"}}}},
			"priorityClassName": "system-cluster-critical",
			"podAnnotations":    map[string]any{"example.com/team": "platform"},
			"podLabels":         map[string]any{"team": "platform"},
			"webhooks": map[string]any{"validating": map[string]any{
				"statefulsets": map[string]any{"failurePolicy": "Fail", "timeoutSeconds": 10},
				"secrets":      map[string]any{"failurePolicy": "Fail", "timeoutSeconds": 3},
			}},
		}, check: func(t *testing.T, r *rendered) {
			d := one[*appsv1.Deployment](t, r, "stsguard")
			pod := d.Spec.Template.Spec
			c := container(t, d)
			assert.EqualValues(t, 3, *d.Spec.Replicas)
			assert.Equal(t, "registry.example/stsguard:v9.9.9", c.Image)
			assert.Equal(t, corev1.PullAlways, c.ImagePullPolicy)
			assert.Equal(t, []corev1.LocalObjectReference{{Name: "regcred"}}, pod.ImagePullSecrets)
			assert.Equal(t, resource.MustParse("256Mi"), c.Resources.Limits[corev1.ResourceMemory])
			assert.NotContains(t, c.Resources.Limits, corev1.ResourceCPU)
			assert.Equal(t, map[string]string{"node-role.kubernetes.io/infra": ""}, pod.NodeSelector)
			assert.Equal(t, "infra", pod.Tolerations[0].Key)
			assert.Nil(t, pod.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution, "affinity replaces the default")
			assert.Len(t, pod.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, 1)
			assert.Equal(t, "topology.kubernetes.io/zone", pod.TopologySpreadConstraints[0].TopologyKey)
			assert.Equal(t, "system-cluster-critical", pod.PriorityClassName)
			assert.Equal(t, "platform", d.Spec.Template.Annotations["example.com/team"])
			assert.Equal(t, "platform", d.Spec.Template.Labels["team"])
			assert.NotContains(t, d.Spec.Selector.MatchLabels, "team", "podLabels stay out of the immutable selector")
			assert.Contains(t, c.Env, corev1.EnvVar{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}})
			want := map[string][2]any{
				"statefulsets.mutate.stsguard.io":          {admissionregistrationv1.Ignore, 5},
				"statefulsets-update.mutate.stsguard.io":   {admissionregistrationv1.Ignore, 5},
				"services.mutate.stsguard.io":              {admissionregistrationv1.Ignore, 5},
				"statefulsets.validate.stsguard.io":        {admissionregistrationv1.Fail, 10},
				"statefulsets-update.validate.stsguard.io": {admissionregistrationv1.Fail, 10},
				"services.validate.stsguard.io":            {admissionregistrationv1.Ignore, 5},
				"services-update.validate.stsguard.io":     {admissionregistrationv1.Ignore, 5},
				"secrets.validate.stsguard.io":             {admissionregistrationv1.Fail, 3},
			}
			require.Len(t, chartWebhooks(r), len(want))
			for _, w := range chartWebhooks(r) {
				require.Contains(t, want, w.name)
				assert.Equal(t, want[w.name][0], *w.failurePolicy, w.name)
				assert.EqualValues(t, want[w.name][1], *w.timeout, w.name)
			}
			one[*policyv1.PodDisruptionBudget](t, r, "stsguard")
		}},
		{name: "one replica", values: map[string]any{"replicaCount": 1}, check: func(t *testing.T, r *rendered) {
			assert.Empty(t, all[*policyv1.PodDisruptionBudget](r), "minAvailable 1 of 1 would block every drain")
		}},
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Every values set of the matrix renders objects that decode strictly into
// their Go types, with the invariants of deploy/ (the render tests'
// checkDeployment and checkWebhooks, for the release stsguard in
// stsguard-system) and what the values ask for.
func TestChartTemplateMatrix(t *testing.T) {
	for _, c := range chartMatrix(t) {
		t.Run(c.name, func(t *testing.T) {
			release, ns := cmpOr(c.release, "stsguard"), cmpOr(c.namespace, "stsguard-system")
			r := renderChart(t, release, ns, c.values)
			fullname := release
			if !strings.Contains(release, "stsguard") {
				fullname = release + "-stsguard"
			}
			for _, o := range r.objs {
				if _, ok := o.(*apiextensionsv1.CustomResourceDefinition); ok {
					continue // a reports API's CRD, as its owner publishes it
				}
				switch o.(type) {
				case *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding,
					*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration:
					assert.Empty(t, o.GetNamespace(), "%T %s is cluster-scoped", o, o.GetName())
				case *corev1.Namespace:
					assert.Fail(t, "the chart renders no Namespace: Helm installs into the release namespace (--create-namespace)")
				case *corev1.ConfigMap:
					if !strings.HasSuffix(o.GetName(), "-dashboard") {
						assert.Equal(t, ns, o.GetNamespace(), "%T %s", o, o.GetName())
					}
				default:
					assert.Equal(t, ns, o.GetNamespace(), "%T %s", o, o.GetName())
				}
				assert.True(t, strings.HasPrefix(o.GetName(), fullname), "%T %s is named after the release", o, o.GetName())
				assert.Equal(t, release, o.GetLabels()["app.kubernetes.io/instance"], "%T %s", o, o.GetName())
			}
			d := one[*appsv1.Deployment](t, r, fullname)
			if release == "stsguard" && ns == "stsguard-system" {
				if c.values["replicaCount"] == nil && c.values["resources"] == nil {
					checkDeployment(t, r, d) // 2 replicas, requests and limits
				}
				if c.values["webhooks"] == nil {
					checkWebhooks(t, r, d) // Ignore, at most 5 s
				}
			}
			checkChartScaleRule(t, r)
			c.check(t, r)
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// checkChartScaleRule: the StatefulSet validating webhook judges UPDATEs of
// statefulsets/scale (kubectl scale, autoscalers).
func checkChartScaleRule(t *testing.T, r *rendered) {
	t.Helper()
	_, validating := harness.WebhookConfigurations(r.objs)
	require.Len(t, validating, 1)
	for _, w := range validating[0].Webhooks {
		if w.ClientConfig.Service == nil || w.ClientConfig.Service.Path == nil || *w.ClientConfig.Service.Path != webhook.ValidateStatefulSetPath {
			continue
		}
		if (webhookEntry{rules: w.Rules}).matches("apps", "statefulsets/scale", admissionregistrationv1.Update) {
			return
		}
	}
	assert.Fail(t, "no StatefulSet validating webhook judges an UPDATE of statefulsets/scale")
}

// chartWebhook is what the tests read of a webhook of either kind.
type chartWebhook struct {
	name          string
	cc            admissionregistrationv1.WebhookClientConfig
	ns            *metav1.LabelSelector
	conditions    []admissionregistrationv1.MatchCondition
	failurePolicy *admissionregistrationv1.FailurePolicyType
	timeout       *int32
}

func chartWebhooks(r *rendered) []chartWebhook {
	var out []chartWebhook
	mutating, validating := harness.WebhookConfigurations(r.objs)
	for _, c := range mutating {
		for _, w := range c.Webhooks {
			out = append(out, chartWebhook{w.Name, w.ClientConfig, w.NamespaceSelector, w.MatchConditions, w.FailurePolicy, w.TimeoutSeconds})
		}
	}
	for _, c := range validating {
		for _, w := range c.Webhooks {
			out = append(out, chartWebhook{w.Name, w.ClientConfig, w.NamespaceSelector, w.MatchConditions, w.FailurePolicy, w.TimeoutSeconds})
		}
	}
	return out
}

// checkSelfManaged: stsguard serve --manage-certs with what it needs to
// find its Secret, its webhook configurations and its names, and the RBAC
// for exactly those; no certificate volume, no caBundle.
func checkSelfManaged(t *testing.T, r *rendered, fullname, ns string) {
	t.Helper()
	d := one[*appsv1.Deployment](t, r, fullname)
	c := container(t, d)
	_, manage := arg(c.Args, "manage-certs")
	assert.True(t, manage)
	_, dir := arg(c.Args, "cert-dir")
	assert.False(t, dir, "--cert-dir and --manage-certs exclude each other")
	for _, v := range d.Spec.Template.Spec.Volumes {
		assert.Nil(t, v.Secret, "volume %s: --manage-certs reads its Secret through the API", v.Name)
	}
	// stsguard's flags, or its defaults when a flag is absent.
	secret := cmpOr(argValue(c.Args, "cert-secret"), server.DefaultCertSecret)
	configName := cmpOr(argValue(c.Args, "webhook-configuration-name"), "stsguard")
	dnsNames := server.DefaultDNSNames()
	if _, ok := arg(c.Args, "dns-name"); ok {
		dnsNames = nil
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, "--dns-name="); ok {
				dnsNames = append(dnsNames, v)
			}
		}
	}
	svc := one[*corev1.Service](t, r, fullname)
	assert.Equal(t, fullname+"-serving-cert", secret)
	assert.Equal(t, fullname, configName)
	assert.ElementsMatch(t, []string{svc.Name + "." + ns + ".svc", svc.Name + "." + ns + ".svc.cluster.local"}, dnsNames)

	role := one[*rbacv1.Role](t, r, fullname+"-manage-certs")
	assert.Equal(t, ns, role.Namespace)
	assert.Equal(t, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{secret}, Verbs: []string{"update"}},
	}, role.Rules)
	cr := one[*rbacv1.ClusterRole](t, r, fullname+"-manage-certs")
	assert.Equal(t, []rbacv1.PolicyRule{{
		APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"},
		ResourceNames: []string{configName}, Verbs: []string{"get", "list", "watch", "update"},
	}}, cr.Rules)
	sa := d.Spec.Template.Spec.ServiceAccountName
	for _, b := range []struct{ subjects []rbacv1.Subject }{
		{one[*rbacv1.RoleBinding](t, r, fullname+"-manage-certs").Subjects},
		{one[*rbacv1.ClusterRoleBinding](t, r, fullname+"-manage-certs").Subjects},
		{one[*rbacv1.ClusterRoleBinding](t, r, fullname).Subjects},
	} {
		assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}, b.subjects)
	}
	mutating, validating := harness.WebhookConfigurations(r.objs)
	require.Len(t, mutating, 1)
	require.Len(t, validating, 1)
	assert.Equal(t, configName, mutating[0].Name)
	assert.Equal(t, configName, validating[0].Name)
	checkInjectedBy(t, r, "")
	for _, w := range chartWebhooks(r) {
		assert.Empty(t, w.cc.CABundle, "%s: --manage-certs writes the caBundle; the chart must not", w.name)
		assert.Equal(t, svc.Name, w.cc.Service.Name)
		assert.Equal(t, ns, w.cc.Service.Namespace)
		sel, err := metav1.LabelSelectorAsSelector(w.ns)
		require.NoError(t, err)
		assert.False(t, sel.Matches(labels.Set{corev1.LabelMetadataName: ns}), "%s: the release namespace is excluded", w.name)
		assert.False(t, sel.Matches(labels.Set{corev1.LabelMetadataName: "kube-system"}), w.name)
	}
	checkMatchConditions(t, r, ns, sa)
}

func argValue(args []string, name string) string {
	v, _ := arg(args, name)
	return v
}

// checkCertDir: the serving certificate is the Secret mounted at
// --cert-dir; the webhooks carry caBundle (when not empty) or nothing.
func checkCertDir(t *testing.T, r *rendered, secret, caBundle string) {
	t.Helper()
	for _, d := range all[*appsv1.Deployment](r) {
		c := container(t, d)
		dir, ok := arg(c.Args, "cert-dir")
		require.True(t, ok)
		_, manage := arg(c.Args, "manage-certs")
		assert.False(t, manage)
		vs := volumeSource(t, d, mountOf(t, c, dir+"/tls.crt"))
		require.NotNil(t, vs.Secret)
		assert.Equal(t, secret, vs.Secret.SecretName)
	}
	for _, w := range chartWebhooks(r) {
		assert.Equal(t, caBundle, string(w.cc.CABundle), w.name)
	}
	for _, cr := range all[*rbacv1.ClusterRole](r) {
		assert.False(t, strings.HasSuffix(cr.Name, "-manage-certs"), "no --manage-certs, no RBAC for it")
	}
	for _, role := range all[*rbacv1.Role](r) {
		assert.True(t, strings.HasSuffix(role.Name, "-background-audit"), "no Role but the background audit's Lease: %s", role.Name)
	}
}

// checkInjectedBy: cert-manager's cainjector annotation on both webhook
// configurations, or none.
func checkInjectedBy(t *testing.T, r *rendered, from string) {
	t.Helper()
	mutating, validating := harness.WebhookConfigurations(r.objs)
	for _, o := range []client.Object{mutating[0], validating[0]} {
		if from == "" {
			assert.NotContains(t, o.GetAnnotations(), "cert-manager.io/inject-ca-from", "%T", o)
		} else {
			assert.Equal(t, from, o.GetAnnotations()["cert-manager.io/inject-ca-from"], "%T", o)
		}
	}
}

// chartPolicy parses the policy ConfigMap as stsguard serve --config does.
func chartPolicy(t *testing.T, r *rendered, fullname string) engine.Config {
	t.Helper()
	cm := one[*corev1.ConfigMap](t, r, fullname+"-policy")
	cfg, err := policy.Parse([]byte(cm.Data["policy.yaml"]))
	require.NoError(t, err, "the rendered policy must load:\n%s", cm.Data["policy.yaml"])
	return cfg
}

// ruleGroups parses a PrometheusRule's spec as `promtool check rules` does
// and returns it as plain data.
func ruleGroups(t *testing.T, spec []byte) any {
	t.Helper()
	y, err := yaml.JSONToYAML(spec)
	require.NoError(t, err)
	_, errs := rulefmt.Parse(y, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.Empty(t, errs)
	var v any
	require.NoError(t, yaml.Unmarshal(y, &v))
	return v
}

// deployPrometheusRuleSpec is the spec of deploy/prometheus/prometheusrule.yaml.
func deployPrometheusRuleSpec(t *testing.T) any {
	t.Helper()
	objs, err := harness.DecodeWith(chartScheme(t), strings.NewReader(string(must(os.ReadFile(filepath.Join(harness.Root(), "deploy", "prometheus", "prometheusrule.yaml"))))))
	require.NoError(t, err)
	require.Len(t, objs, 1)
	return ruleGroups(t, objs[0].(*prometheusRule).Spec)
}

// Values Helm must refuse, each with a message that names the value and
// says what is wrong: values.schema.json, or the chart's own checks for
// what a schema cannot say.
func TestChartRefusesInvalidValues(t *testing.T) {
	for _, c := range []struct {
		name string
		set  []string
		want []string
	}{
		{"replicaCount two", []string{"replicaCount=two"}, []string{"at '/replicaCount': got string, want integer"}},
		{"unknown certificate mode", []string{"certificates.mode=vault"}, []string{"at '/certificates/mode': value must be one of 'self-managed', 'cert-manager', 'secret'"}},
		{"unknown rule ID in the policy", []string{"policy.rules.weak-pasword=Deny"}, []string{"at '/policy/rules': additional properties 'weak-pasword' not allowed"}},
		{"a mutation under rules", []string{"policy.rules.password-secret-ref=Deny"}, []string{"at '/policy/rules': additional properties 'password-secret-ref' not allowed"}},
		{"unknown mutation ID", []string{"policy.mutations.weak-password=On"}, []string{"at '/policy/mutations': additional properties 'weak-password' not allowed"}},
		{"unknown action", []string{"policy.rules.weak-password=Block"}, []string{"at '/policy/rules/weak-password': value must be one of 'Deny', 'Warn', 'Audit', 'Off'"}},
		{"unknown rule ID in an exemption", []string{"policy.exemptions[0].namespaces[0]=sandbox", "policy.exemptions[0].rules[0]=weak-pasword"}, []string{"at '/policy/exemptions/0/rules/0': value must be one of 'service-name-empty', "}},
		{"unknown policy field", []string{"policy.rule.weak-password=Deny"}, []string{"at '/policy': additional properties 'rule' not allowed"}},
		{"exemption of every namespace", []string{"policy.exemptions[0].rules[0]=weak-password"}, []string{"at '/policy/exemptions/0'", "missing property 'namespaces'"}},
		{"misspelt value", []string{"replicas=3"}, []string{"additional properties 'replicas' not allowed"}},
		{"unknown failurePolicy", []string{"webhooks.validating.secrets.failurePolicy=Never"}, []string{"at '/webhooks/validating/secrets/failurePolicy': value must be one of 'Ignore', 'Fail'"}},
		{"timeout above the apiserver's 30 s", []string{"webhooks.mutating.statefulsets.timeoutSeconds=31"}, []string{"at '/webhooks/mutating/statefulsets/timeoutSeconds': maximum: got 31, want 30"}},
		{"excluded namespace that is no name", []string{"webhooks.excludedNamespaces[0]=Team_A"}, []string{"at '/webhooks/excludedNamespaces/0'"}},
		{"secret mode without a Secret", []string{"certificates.mode=secret"}, []string{"certificates.secret.name is required with certificates.mode secret"}},
		{"caBundle that is no PEM", []string{"certificates.mode=secret", "certificates.secret.name=tls", "certificates.secret.caBundle=LS0tLS1CRUdJTg=="}, []string{"at '/certificates/secret/caBundle'"}},
		{"issuerRef without cert-manager", []string{"certificates.certManager.issuerRef.name=corp-ca"}, []string{`certificates.certManager.issuerRef is set but certificates.mode is "self-managed"`}},
		{"secret name without secret mode", []string{"certificates.secret.name=tls"}, []string{`certificates.secret.name is set but certificates.mode is "self-managed"`}},
		{"ServiceMonitor without the metrics Service", []string{"metrics.serviceMonitor.enabled=true", "metrics.service.enabled=false"}, []string{"metrics.serviceMonitor.enabled needs metrics.enabled and metrics.service.enabled"}},
		{"invalid duration", []string{"certificates.mode=cert-manager", "certificates.certManager.duration=90d"}, []string{"at '/certificates/certManager/duration'"}},
		{"shutdown delay in milliseconds", []string{"shutdownDelay=500ms"}, []string{"at '/shutdownDelay'"}},
		{"preStop and shutdown delay past the grace period", []string{"preStopSleepSeconds=15", "shutdownDelay=10s"}, []string{"preStopSleepSeconds (15) and shutdownDelay (10s) add up to 25 s, more than 20"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"template", "stsguard", chartDir(), "--namespace", "stsguard-system"}
			for _, s := range c.set {
				args = append(args, "--set", s)
			}
			_, err := runHelm(t, "", args...)
			require.Error(t, err, "helm must refuse %v", c.set)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
			// helm install and upgrade check the same schema before they
			// touch the cluster; lint reports schema errors too (it does not
			// stop at the chart's own fail and required checks).
			if !strings.Contains(c.want[0], "at '/") && !strings.Contains(c.want[0], "additional properties") {
				return
			}
			lint := []string{"lint", "--strict", chartDir()}
			for _, s := range c.set {
				lint = append(lint, "--set", s)
			}
			_, err = runHelm(t, "", lint...)
			assert.Error(t, err, "helm lint must refuse %v", c.set)
		})
	}
}
