package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/stsguard/stsguard/test/harness"
)

func main() {
	bin := flag.String("stsguard", "bin/stsguard", "the stsguard binary to serve the webhooks with and to run expand and audit")
	flag.Parse()
	if err := run(*bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

// demo runs commands against the cluster and keeps what each printed.
type demo struct {
	kubectl, stsguard, kubeconfig string
	missing                       []string
	checked                       int
}

func run(bin string) error {
	start := time.Now()
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	fmt.Println("# starting a local cluster: kube-apiserver, etcd, kube-controller-manager, kube-scheduler,")
	fmt.Println("# and kwok, which plays the kubelet of one simulated node (pods run without containers)")
	cl, err := harness.StartCluster()
	if err != nil {
		return err
	}
	defer cl.Stop()
	kubectl, err := harness.Kubectl()
	if err != nil {
		return err
	}
	// The PolicyReport CRD, as Kyverno or Policy Reporter would have
	// installed it, for stsguard's background audit to write its reports.
	crd := exec.Command(kubectl, "apply", "--server-side", "-f", filepath.Join("charts", "stsguard", "files", "crds", "wgpolicyk8s.io_policyreports.yaml"))
	crd.Env, crd.Dir = append(os.Environ(), "KUBECONFIG="+cl.Kubeconfig), harness.Root()
	if out, err := crd.CombinedOutput(); err != nil {
		return fmt.Errorf("installing the PolicyReport CRD: %w: %s", err, out)
	}
	established := exec.Command(kubectl, "wait", "--for=condition=Established", "--timeout=60s", "crd/policyreports.wgpolicyk8s.io")
	established.Env = crd.Env
	if out, err := established.CombinedOutput(); err != nil {
		return fmt.Errorf("waiting for the PolicyReport CRD: %w: %s", err, out)
	}
	logPath := filepath.Join(os.TempDir(), "stsguard-demo.log")
	s, err := harness.ServeBinary(cl.ControlPlane, bin, cl.Kubeconfig, logPath)
	if err != nil {
		return err
	}
	defer s.Stop()
	fmt.Printf("# cluster and stsguard serve up in %s (stsguard log: %s); webhooks registered from deploy/base\n",
		time.Since(start).Round(100*time.Millisecond), logPath)
	fmt.Printf("# kubectl is %s, KUBECONFIG=%s\n", kubectl, cl.Kubeconfig)
	d := &demo{kubectl: kubectl, stsguard: bin, kubeconfig: cl.Kubeconfig}

	d.section("the cluster")
	d.k([]string{"kwok-node-0   Ready"}, "get", "nodes")
	d.k([]string{"standard (default)   fake.csi.stsguard.io"}, "get", "storageclass")

	d.examples()
	d.password()
	d.canaryAndScale()
	d.guard()
	d.storage()
	d.section("what stsguard thinks of the whole cluster now")
	d.stsguardCmd([]string{"StatefulSet web-without-service/web", "[rule: headless-service-missing]", "objects checked: deny 0"}, "audit", "--cluster")
	d.reports()

	if err := s.Exited(); err != nil {
		return fmt.Errorf("%w (log: %s)", err, logPath)
	}
	if len(d.missing) > 0 {
		return fmt.Errorf("stsguard did not do what the demo shows (log: %s):\n  %s", logPath, strings.Join(d.missing, "\n  "))
	}
	fmt.Printf("\n# all %d expected outcomes seen in %s\n", d.checked, time.Since(start).Round(100*time.Millisecond))
	return nil
}

func (d *demo) section(title string) { fmt.Printf("\n# --- %s\n", title) }

// exec runs name with args, prints the command line and its output, and
// checks that the output contains each of want.
func (d *demo) exec(want []string, shown, name string, args ...string) string {
	fmt.Printf("$ %s %s\n", shown, quoteArgs(args))
	out := d.output(name, args...)
	fmt.Print(out)
	d.expect(shown+" "+quoteArgs(args), out, want)
	return out
}

// output runs name with args and returns what it printed on stdout and
// stderr, in order, and a last line with the exit status when it is not 0.
func (d *demo) output(name string, args ...string) string {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+d.kubeconfig)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = harness.Root()
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			fmt.Fprintf(&out, "(exit status %d)\n", exit.ExitCode())
		} else {
			fmt.Fprintf(&out, "(could not run: %v)\n", err)
		}
	}
	return out.String()
}

func (d *demo) expect(what, out string, want []string) {
	for _, w := range want {
		d.checked++
		if !strings.Contains(out, w) {
			d.missing = append(d.missing, fmt.Sprintf("%s: want %q", what, w))
		}
	}
}

// k runs kubectl.
func (d *demo) k(want []string, args ...string) string {
	return d.exec(want, "kubectl", d.kubectl, args...)
}

// stsguardCmd runs the stsguard binary.
func (d *demo) stsguardCmd(want []string, args ...string) string {
	return d.exec(want, "stsguard", d.stsguard, args...)
}

// waitQuietly runs kubectl until its output contains want or 60 s pass,
// printing nothing: the cluster's controllers (and stsguard's informer
// cache) act a moment after a write.
func (d *demo) waitQuietly(want string, args ...string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(d.output(d.kubectl, args...), want) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// examples applies every directory of examples/ in its own namespace.
func (d *demo) examples() {
	d.section("the seed examples, each applied in a namespace of its own (see examples/README.md)")
	want := map[string][]string{
		"cassandra":                 {"statefulset.apps/cassandra created", "[rule: storage-class-not-found]"},
		"clusterip-service":         {"is invalid: ", "[rule: headless-service-not-headless]"},
		"mysql-literal-password":    {"statefulset.apps/mysql created", "changed by stsguard: moved the literal value of MYSQL_ROOT_PASSWORD into Secret \"mysql-credentials\""},
		"mysql-plaintext-password":  {"is invalid: ", "[rule: weak-password]"},
		"mysql-secret-ref":          {"statefulset.apps/mysql created"},
		"nginx-minimal":             {"statefulset.apps/nginx-minimal created"},
		"nginx-with-init-container": {"statefulset.apps/nginx-with-init-container created"},
		"postgres":                  {"statefulset.apps/postgres created", "[rule: headless-service-missing]", "generated a 32-character password into Secret \"postgres-credentials\""},
		"selector-mismatch":         {"is invalid: ", "[rule: headless-service-selector-mismatch]"},
		"web":                       {"service/web created", "statefulset.apps/web created"},
		"web-without-service":       {"statefulset.apps/web created", "[rule: headless-service-missing]"},
	}
	dirs, _ := filepath.Glob(filepath.Join(harness.Root(), "examples", "*"))
	sort.Strings(dirs)
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		name := filepath.Base(dir)
		ns := name
		if name == "cassandra" {
			ns = "databases" // its manifests name their namespace
		}
		fmt.Println()
		d.k(nil, "create", "namespace", ns)
		d.k(want[name], "apply", "-n", ns, "-f", "examples/"+name+"/")
		delete(want, name)
	}
	for name := range want {
		d.missing = append(d.missing, "examples/"+name+": not found")
	}

	d.section("the pods run on the simulated node, with their volumes provisioned and bound")
	d.k([]string{"partitioned roll out complete: 3 new pods have been updated"}, "rollout", "status", "statefulset/postgres", "-n", "postgres", "--timeout=90s")
	d.k([]string{"postgres-2   1/1     Running", "kwok-node-0"}, "get", "pods", "-n", "postgres", "-o", "wide")
	d.k([]string{"postgres-data-postgres-2   Bound"}, "get", "pvc", "-n", "postgres")
}

// password shows the literal password moved into a Secret, and applying the
// same file again.
func (d *demo) password() {
	d.section("the literal MYSQL_ROOT_PASSWORD now lives in a Secret; the StatefulSet references it")
	const ns = "mysql-literal-password"
	d.k([]string{`"secretKeyRef":{"key":"mysql-root-password","name":"mysql-credentials"}`},
		"get", "statefulset", "mysql", "-n", ns, "-o", "jsonpath={.spec.template.spec.containers[0].env}{\"\\n\"}")
	d.k([]string{"mysql-credentials   Opaque   1"}, "get", "secret", "-n", ns, "-l", "app.kubernetes.io/managed-by=stsguard")
	fmt.Println("# kubectl's last-applied-configuration annotation was rewritten the same way: no copy of the literal is stored")
	d.k([]string{`{"name":"MYSQL_ROOT_PASSWORD","valueFrom":{"secretKeyRef":{"key":"mysql-root-password","name":"mysql-credentials"}}}`},
		"get", "statefulset", "mysql", "-n", ns, "-o", `jsonpath={.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}`)
	d.checked++
	if out := d.output(d.kubectl, "get", "statefulset", "mysql", "-n", ns, "-o", "json", "--show-managed-fields"); strings.Contains(out, "Vh3-literal-but-not-default") {
		d.missing = append(d.missing, "the stored StatefulSet mysql still holds the literal password")
	}
	fmt.Println("# applying the same file again converges: the same Secret, the same pod template, no rollout")
	d.k([]string{"statefulset.apps/mysql configured"}, "apply", "-n", ns, "-f", "examples/mysql-literal-password/")
	d.k([]string{"mysql-credentials"}, "get", "secret", "-n", ns, "-l", "app.kubernetes.io/managed-by=stsguard")
	d.k([]string{"mysql   3/3"}, "get", "statefulset", "mysql", "-n", ns)
}

// canaryAndScale shows a staged rollout of examples/web, and kubectl scale
// judged on the way.
func (d *demo) canaryAndScale() {
	d.section("a canary rollout: stsguard.io/canary=1 stages a new pod template on the highest ordinal")
	const ns = "web"
	d.k([]string{"statefulset.apps/web scaled"}, "scale", "statefulset/web", "-n", ns, "--replicas=4")
	d.waitQuietly("4/4", "get", "statefulset", "web", "-n", ns)
	d.k([]string{"statefulset.apps/web annotated"}, "annotate", "statefulset/web", "-n", ns, "stsguard.io/canary=1")
	d.k([]string{"statefulset.apps/web image updated", "set to 3 so that only pods with ordinal >= 3 take the new pod template"},
		"set", "image", "statefulset/web", "-n", ns, "web=nginx:1.27")
	d.waitQuietly("web-3   nginx:1.27   Running", "get", "pods", "-n", ns, "-o", "custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[0].image,STATUS:.status.phase")
	d.k([]string{"web-0   nginx        Running", "web-3   nginx:1.27   Running"},
		"get", "pods", "-n", ns, "-o", "custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[0].image,STATUS:.status.phase")

	fmt.Println("# kubectl scale goes through the scale subresource; stsguard judges it like a spec.replicas change")
	d.k([]string{"statefulset.apps/web scaled", "[rule: partition-exceeds-replicas]"}, "scale", "statefulset/web", "-n", ns, "--replicas=2")
	fmt.Println("# promote the canary: lower the partition to 0 and every pod takes the new template")
	d.k([]string{"statefulset.apps/web patched"}, "patch", "statefulset/web", "-n", ns, "-p", `{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}`)
	d.k([]string{"partitioned roll out complete: 2 new pods have been updated"}, "rollout", "status", "statefulset/web", "-n", ns, "--timeout=90s")
	d.k([]string{"web-0   nginx:1.27   Running", "web-1   nginx:1.27   Running"},
		"get", "pods", "-n", ns, "-o", "custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[0].image,STATUS:.status.phase")
}

// guard shows the Service and Secret side, as server-side dry runs.
func (d *demo) guard() {
	d.section("the Service and Secret side (server-side dry runs: nothing is changed)")
	d.k([]string{"is invalid: ", "[rule: headless-service-selector-change]"},
		"patch", "service/web", "-n", "web", "-p", `{"spec":{"selector":{"app":"web-v2"}}}`, "--dry-run=server")
	d.k([]string{"[rule: secret-in-use-delete]"}, "delete", "secret", "mysql-secret", "-n", "mysql-secret-ref", "--dry-run=server")
	d.k([]string{"is invalid: ", "[rule: weak-password]"},
		"create", "secret", "generic", "weak", "-n", "web", "--from-literal=password=changeme", "--dry-run=server")
}

// storage grows the volumeClaimTemplate of examples/postgres: denied with a
// plan, then done by stsguard expand, with the pods still running.
func (d *demo) storage() {
	d.section("growing the volumeClaimTemplate of examples/postgres from 10Gi to 20Gi")
	const ns = "postgres"
	pods := []string{"get", "pods", "-n", ns, "-o", "custom-columns=NAME:.metadata.name,UID:.metadata.uid,STATUS:.status.phase"}
	before := d.k([]string{"postgres-0"}, pods...)
	d.k([]string{"is invalid: ", "[rule: volume-claim-template-resize]",
		"stsguard expand statefulset/postgres -n postgres --template postgres-data --size 20Gi"},
		"patch", "statefulset/postgres", "-n", ns, "--type=json",
		"-p", `[{"op":"replace","path":"/spec/volumeClaimTemplates/0/spec/resources/requests/storage","value":"20Gi"}]`)
	d.stsguardCmd([]string{"dry run complete"}, "expand", "statefulset/postgres", "-n", ns, "--template", "postgres-data", "--size", "20Gi", "--dry-run")
	d.stsguardCmd([]string{"done: volumeClaimTemplate \"postgres-data\" of statefulset/postgres -n postgres is 20Gi", "pod postgres-0: untouched"},
		"expand", "statefulset/postgres", "-n", ns, "--template", "postgres-data", "--size", "20Gi")
	d.k([]string{"postgres-data-postgres-0   Bound", "20Gi"}, "get", "pvc", "-n", ns)
	fmt.Println("# the StatefulSet controller has re-adopted the same pods (same UIDs): nothing restarted")
	d.waitQuietly("3/3", "get", "statefulset", "postgres", "-n", ns)
	after := d.k(nil, pods...)
	d.checked++
	if before != after {
		d.missing = append(d.missing, "the postgres pods changed during expand")
	}
	d.k([]string{"partitioned roll out complete: 3 new pods have been updated"}, "rollout", "status", "statefulset/postgres", "-n", ns, "--timeout=60s")
}

// quoteArgs joins args as a shell would need them typed.
func quoteArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \"'{}[]$*") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// reports shows what stsguard serve's background audit keeps in the
// cluster: one PolicyReport per namespace with findings about what exists.
func (d *demo) reports() {
	d.section("the same, kept current in the cluster: stsguard serve's background audit writes a PolicyReport per namespace")
	// postgres's report follows its re-creation by stsguard expand a
	// moment ago (reports are written 2 s after the last change).
	d.waitQuietly("postgres", "get", "policyreport", "-A")
	d.k([]string{"NAMESPACE", "web-without-service", "postgres", "databases"}, "get", "policyreport", "-A")
	d.k([]string{"headless-service-missing\twarn\tStatefulSet/web"},
		"get", "policyreport", "stsguard", "-n", "web-without-service",
		"-o", `jsonpath={range .results[*]}{.rule}{"\t"}{.result}{"\t"}{.resources[0].kind}/{.resources[0].name}{"\n"}{end}`)
}
