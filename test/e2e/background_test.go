package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	wgpolicyv1alpha2 "github.com/stsguard/stsguard/apis/wgpolicyk8s/v1alpha2"
	"github.com/stsguard/stsguard/test/harness"
)

// auditor is a `stsguard serve` process whose background audit is under
// test: its metrics, its log.
type auditor struct {
	*harness.Serving
	metrics prometheus.Gatherer
}

func (a *auditor) value(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	return harness.Value(t, a.metrics, name, labels)
}

// startAuditor starts `stsguard serve` with the background audit judging
// everything every 2 s and its Lease in leaseNS. The webhook configurations
// call the test's in-process server; this one listens on a port of its own.
func startAuditor(t *testing.T, bin, name, leaseNS string, extra ...string) *auditor {
	t.Helper()
	port, err := harness.FreeAddr()
	require.NoError(t, err)
	args := append([]string{
		"--port", strings.TrimPrefix(port[strings.LastIndex(port, ":"):], ":"),
		"--background-audit-interval=2s",
		"--leader-election-namespace=" + leaseNS,
	}, extra...)
	s, err := harness.ServeBinary(cl.ControlPlane, bin, cl.Kubeconfig, filepath.Join(t.TempDir(), name+".log"), args...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Stop() })
	return &auditor{Serving: s, metrics: harness.MetricsEndpoint("http://" + s.MetricsAddr + "/metrics")}
}

func (a *auditor) log(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(a.Log)
	require.NoError(t, err)
	return string(b)
}

// object names one object of a report or an audit.
type object struct{ Kind, Namespace, Name string }

// verdict is what stsguard holds against one object: its rules by action.
type verdict struct{ Deny, Warn, Audit []string }

// policyReports reads every PolicyReport with kubectl, as a user would.
func policyReports(t *testing.T) []wgpolicyv1alpha2.PolicyReport {
	t.Helper()
	res := mustKubectl(t, "", "get", "policyreports.wgpolicyk8s.io", "-A", "-o", "json")
	var list wgpolicyv1alpha2.PolicyReportList
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &list))
	return list.Items
}

// verdicts reads the verdicts off the stsguard reports of namespaces.
func verdicts(reports []wgpolicyv1alpha2.PolicyReport, namespaces []string) map[object]verdict {
	out := map[object]verdict{}
	for _, r := range reports {
		if r.Name != "stsguard" || !slices.Contains(namespaces, r.Namespace) {
			continue
		}
		for _, res := range r.Results {
			s := res.Subjects[0]
			o := object{s.Kind, s.Namespace, s.Name}
			v := out[o]
			switch res.Properties["action"] {
			case "Deny":
				v.Deny = append(v.Deny, res.Rule)
			case "Warn":
				v.Warn = append(v.Warn, res.Rule)
			case "Audit":
				v.Audit = append(v.Audit, res.Rule)
			}
			out[o] = v
		}
	}
	for o, v := range out {
		slices.Sort(v.Deny)
		slices.Sort(v.Warn)
		slices.Sort(v.Audit)
		v.Deny, v.Warn, v.Audit = slices.Compact(v.Deny), slices.Compact(v.Warn), slices.Compact(v.Audit)
		out[o] = v
	}
	return out
}

// auditCluster is `stsguard audit --cluster`'s verdicts on namespaces.
func auditCluster(t *testing.T, bin string, namespaces []string) map[object]verdict {
	t.Helper()
	out, err := exec.Command(bin, "audit", "--cluster", "-o", "json", "--kubeconfig", cl.Kubeconfig).Output()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		require.NoError(t, err, "stsguard audit --cluster: %s", out)
	}
	var report struct {
		Objects []struct {
			Kind, Namespace, Name string
			Deny, Warn, Audit     []string
		} `json:"objects"`
	}
	require.NoError(t, json.Unmarshal(out, &report))
	v := map[object]verdict{}
	for _, d := range report.Objects {
		if !slices.Contains(namespaces, d.Namespace) || len(d.Deny)+len(d.Warn)+len(d.Audit) == 0 {
			continue
		}
		v[object{d.Kind, d.Namespace, d.Name}] = verdict{Deny: d.Deny, Warn: d.Warn, Audit: d.Audit}
	}
	return v
}

// stsguard serve judges what exists, as a platform team rolling rules out
// needs it: the examples are admitted while the Deny rules are at Audit,
// then two replicas with the default policy report them. Without the
// reports API they export metrics only, and say so once; with it, the
// replica holding the Lease (and only it) writes one PolicyReport per
// namespace, which follows a fixed Service and a deleted StatefulSet and
// says what `stsguard audit --cluster` says; the other replica takes over
// when the first stops. With --reports-api openreports.io/v1alpha1, the
// findings are openreports.io Reports.
func TestBackgroundAudit(t *testing.T) {
	bin := harness.BuildStsguard(t)
	c, _ := newClient(t)
	leaseNS := namespace(t, c)

	// The Audit stage: the webhook records the Deny rules' findings and
	// admits the objects.
	srv.SetPolicy(t, "rules:\n  headless-service-not-headless: Audit\n  headless-service-selector-mismatch: Audit\n  weak-password: Audit\n")
	dirs, err := filepath.Glob(filepath.Join(harness.Root(), "examples", "*"))
	require.NoError(t, err)
	nsOf := map[string]string{}
	var namespaces []string
	for _, d := range dirs {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			continue
		}
		ns := namespace(t, c)
		manifests, err := filepath.Glob(filepath.Join(d, "*.yaml"))
		require.NoError(t, err)
		for _, m := range manifests {
			raw, err := os.ReadFile(m)
			require.NoError(t, err)
			if strings.Contains(string(raw), "\n  namespace: ") { // examples/cassandra names its own
				own := strings.TrimSpace(strings.SplitN(strings.SplitN(string(raw), "\n  namespace: ", 2)[1], "\n", 2)[0])
				_ = kubectl(t, "", "create", "namespace", own)
				mustKubectl(t, "", "apply", "-f", m)
				ns = own
				continue
			}
			mustKubectl(t, "", "apply", "-n", ns, "-f", m)
		}
		nsOf[filepath.Base(d)] = ns
		namespaces = append(namespaces, ns)
	}
	srv.ResetPolicy(t)

	// Without the reports API: metrics only, said once in the log.
	a := startAuditor(t, bin, "a", leaseNS)
	notHeadless := map[string]string{"rule": "headless-service-not-headless", "action": "Deny"}
	harness.Eventually(t, "the existing ClusterIP Service's violation in stsguard_violations", func() bool {
		return a.value(t, "stsguard_violations", notHeadless) >= 1
	}, time.Minute)
	scanned := a.value(t, "stsguard_background_audit_last_scan_timestamp_seconds", nil)
	harness.Eventually(t, "another scan", func() bool {
		return a.value(t, "stsguard_background_audit_last_scan_timestamp_seconds", nil) > scanned
	}, 30*time.Second)
	assert.Equal(t, 1, strings.Count(a.log(t), "exported as metrics only"), "said once:\n%s", a.log(t))
	assert.Zero(t, a.value(t, "stsguard_background_audit_report_writes_total", nil))
	assert.Equal(t, 1.0, a.value(t, "stsguard_background_audit_leader", nil))

	// With it: a PolicyReport per namespace with findings, from the next scan on.
	crd := filepath.Join(harness.Root(), "charts", "stsguard", "files", "crds", "wgpolicyk8s.io_policyreports.yaml")
	mustKubectl(t, "", "apply", "--server-side", "-f", crd)
	mustKubectl(t, "", "wait", "--for=condition=Established", "--timeout=60s", "crd/policyreports.wgpolicyk8s.io")
	t.Cleanup(func() { _ = kubectl(t, "", "delete", "-f", crd, "--wait=false") })
	clusterIP := nsOf["clusterip-service"]
	web := object{"StatefulSet", clusterIP, "web"}
	harness.Eventually(t, "the report of "+clusterIP, func() bool {
		return slices.Contains(verdicts(policyReports(t), namespaces)[web].Deny, "headless-service-not-headless")
	}, time.Minute)
	res := mustKubectl(t, "", "get", "policyreport", "-A")
	t.Logf("kubectl get policyreport -A:\n%s", res.Stdout)
	assert.Contains(t, res.Stdout, clusterIP)

	// A second replica: it waits for the Lease, and writes nothing.
	b := startAuditor(t, bin, "b", leaseNS)
	harness.Eventually(t, "b campaigning", func() bool { return strings.Contains(b.log(t), "campaigning for the Lease") })
	lease := mustKubectl(t, "", "get", "lease", "-n", leaseNS, "stsguard-background-audit", "-o", "jsonpath={.spec.holderIdentity}")
	assert.Contains(t, a.log(t), lease.Stdout, "a holds the Lease")
	assert.Zero(t, b.value(t, "stsguard_background_audit_leader", nil))
	assert.Zero(t, b.value(t, "stsguard_violations", nil))

	// The decisions are those of stsguard audit --cluster.
	var got, want map[object]verdict
	harness.Eventually(t, "the reports to say what stsguard audit --cluster says", func() bool {
		got, want = verdicts(policyReports(t), namespaces), auditCluster(t, bin, namespaces)
		return assert.ObjectsAreEqual(want, got)
	}, 30*time.Second)
	assert.Equal(t, want, got, "stsguard audit --cluster (expected) against the reports (actual)")
	assert.NotEmpty(t, got)

	// The Service fixed (re-created headless): its finding goes.
	mustKubectl(t, "", "delete", "service", "-n", clusterIP, "web")
	mustKubectl(t, toYAML(t, harness.Service(clusterIP, "web", "None", map[string]string{"app": "web"})), "create", "-n", clusterIP, "-f", "-")
	harness.Eventually(t, "the fixed Service's finding to go", func() bool {
		return !slices.Contains(verdicts(policyReports(t), namespaces)[web].Deny, "headless-service-not-headless")
	}, 30*time.Second)

	// The StatefulSet deleted: its results go.
	mismatch := nsOf["selector-mismatch"]
	require.Contains(t, verdicts(policyReports(t), namespaces), object{"StatefulSet", mismatch, "web"})
	mustKubectl(t, "", "delete", "statefulset", "-n", mismatch, "web")
	harness.Eventually(t, "the deleted StatefulSet's results to go", func() bool {
		_, ok := verdicts(policyReports(t), namespaces)[object{"StatefulSet", mismatch, "web"}]
		return !ok
	}, 30*time.Second)
	assert.Zero(t, b.value(t, "stsguard_background_audit_report_writes_total", nil), "only the Lease holder writes")

	// a stops and releases the Lease: b takes over, and writes.
	require.NoError(t, a.Stop())
	harness.Eventually(t, "b to hold the Lease", func() bool { return b.value(t, "stsguard_background_audit_leader", nil) == 1 }, 30*time.Second)
	plain := nsOf["mysql-plaintext-password"]
	require.NotEmpty(t, verdicts(policyReports(t), []string{plain}))
	mustKubectl(t, "", "delete", "statefulset", "-n", plain, "--all")
	harness.Eventually(t, "b to write the report", func() bool {
		return b.value(t, "stsguard_background_audit_report_writes_total", nil) > 0
	}, 30*time.Second)
	harness.Eventually(t, "the results of the deleted StatefulSets to go", func() bool {
		for o := range verdicts(policyReports(t), []string{plain}) {
			if o.Kind == "StatefulSet" {
				return false
			}
		}
		return true
	}, 30*time.Second)

	// --reports-api openreports.io/v1alpha1: Reports instead (a replica
	// on a Lease of its own, so that it runs beside b).
	orCRD := filepath.Join(harness.Root(), "charts", "stsguard", "files", "crds", "openreports.io_reports.yaml")
	mustKubectl(t, "", "apply", "--server-side", "-f", orCRD)
	t.Cleanup(func() { _ = kubectl(t, "", "delete", "-f", orCRD, "--wait=false") })
	mustKubectl(t, "", "wait", "--for=condition=Established", "--timeout=60s", "crd/reports.openreports.io")
	startAuditor(t, bin, "c", leaseNS, "--reports-api=openreports.io/v1alpha1", "--leader-election-id=openreports")
	missing := nsOf["web-without-service"]
	harness.Eventually(t, "the Report of "+missing, func() bool {
		res := kubectl(t, "", "get", "reports.openreports.io", "-n", missing, "stsguard", "-o",
			`jsonpath={range .results[*]}{.rule}/{.result}/{.resources[0].name}{" "}{end}`)
		return res.ExitCode == 0 && strings.Contains(res.Stdout, "headless-service-missing/warn/web")
	}, time.Minute)
}
