package main

// The decisions table: every case of examples/ (applied as kubectl apply -f
// applies the directory) and every rule fixture case of test/testdata/rules
// (one admission request over stored objects), through
//
//   - stsguard: an example through `stsguard audit -o json` (the replay of
//     kubectl apply's order through stsguard's rules); a fixture case as its
//     test.yaml expects, which go test ./rules checks on every run;
//   - Kyverno's admission controller with the policies of bench/peers/kyverno,
//     live on the bench's apiserver: the stored objects are created in a
//     namespace of the case before Kyverno's webhooks select it, then the
//     request is sent (dry run for a fixture case);
//   - kube-score's statefulset-has-servicename on the same files.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/stsguard/stsguard/audit"
	"github.com/stsguard/stsguard/test/harness"
)

// covered are the stsguard rules the Kyverno policies express, and
// notCovered why the others are not.
var (
	covered = sets.New(
		"service-name-empty", "headless-service-missing", "headless-service-not-headless", "headless-service-selector-mismatch",
		"headless-service-selector-change", "headless-service-default",
		"weak-password", "password-secret-ref",
		"volume-claim-template-shrink", "volume-claim-template-immutable", "volume-claim-template-resize",
		"termination-grace-period", "rollout-partition",
		"partition-exceeds-replicas", "readiness-probe-missing", "volume-claim-template-unmounted",
	)
	notCovered = map[string]string{
		"headless-service-delete":        "not written: a DELETE policy listing StatefulSets (expressible with resource.List)",
		"secret-in-use-delete":           "not written: a DELETE policy listing StatefulSets (expressible with resource.List)",
		"secret-key-removed":             "not written: a Secret UPDATE policy listing StatefulSets' references (expressible, long)",
		"secret-ref-missing":             "not written: one resource.Get per reference of every kind (env, envFrom, volumes, imagePullSecrets)",
		"storage-class-not-found":        "not written: needs the default StorageClass too (expressible with resource.List)",
		"storage-class-not-expandable":   "not written: reads the StorageClass of each template and of each existing PVC",
		"pvc-retention-delete":           "not written: the image profiles again (expressible)",
		"pvc-smaller-than-template":      "not expressible as stsguard does it: lists the PVCs and prints the stsguard expand command",
		"termination-grace-period-short": "not written: the profiles' values against an explicit value",
		"exemption-invalid":              "stsguard's exemption annotations; Kyverno has PolicyExceptions instead",
	}
	// explained are the differences of single cases that the rules above
	// do not explain.
	explained = map[string]string{
		"headless-service-default/mutating-phase":                "the case runs stsguard's mutating webhook alone (no validation); the live request runs both",
		"headless-service-not-headless/scale-is-ratcheted":       ratchet,
		"headless-service-not-headless/service-update-ratcheted": ratchet,
		"weak-password/scale-is-ratcheted":                       ratchet,
		"weak-password/secret-update-ratcheted":                  ratchet,
		"weak-password/secret-value-default":                     "stsguard also judges the password a StatefulSet reads from a Secret; the policy judges literal values only (a resource.Get per reference would do it)",
		"rollout-partition/implicit-partition-made-explicit":     "the fixture judges the object as sent; on a live apiserver the defaulting sets partition 0 before any webhook runs, so neither changes it",
		"rollout-partition/invalid-canary":                       "stsguard reports an annotation that is not a number and makes the partition explicit; the policy ignores it",
		"password-secret-ref/generates-postgres-password":        "stsguard generates a password into a Secret for an image that cannot start without one: a Secret written in the same request, which a Kyverno policy cannot do",
		"password-secret-ref/update-warns-instead-of-generating": "stsguard warns that the image needs a password on an UPDATE; not written",
		"termination-grace-period/recreate-steps-aside":          "stsguard recognizes the re-creation of a StatefulSet by stsguard expand and keeps the stored template; the policy cannot know it",
	}
	// pairing are the rules whose verdict kube-score's
	// statefulset-has-servicename is compared with.
	pairing = sets.New("service-name-empty", "headless-service-missing", "headless-service-not-headless", "headless-service-selector-mismatch")
)

// outcome is what one tool decided on one object.
type outcome struct {
	object  string // Kind/name
	denied  bool
	by      string   // who denied: "kyverno", "apiserver", "stsguard"
	rules   []string // deny, warn and mutation rule IDs, sorted
	deny    []string
	note    string // a failure to judge, or what the apiserver said
	skipped bool   // not judged (Kyverno not run)
}

func (o outcome) String() string {
	if o.skipped {
		return "—"
	}
	var parts []string
	if o.denied {
		d := "denied"
		if o.by == "apiserver" {
			d = "denied by the apiserver"
		}
		if len(o.deny) > 0 {
			d += " (" + strings.Join(o.deny, ", ") + ")"
		}
		parts = append(parts, d)
	} else {
		parts = append(parts, "admitted")
	}
	others := slices.DeleteFunc(slices.Clone(o.rules), func(r string) bool { return slices.Contains(o.deny, r) })
	if len(others) > 0 {
		parts = append(parts, strings.Join(others, ", "))
	}
	if o.note != "" {
		parts = append(parts, o.note)
	}
	return strings.Join(parts, "; ")
}

// ratchet explains the UPDATEs stsguard ratchets.
const ratchet = "stsguard ratchets: an UPDATE that leaves a stored violation as it was (kubectl scale, a label) is admitted with a warning, so that fixing or scaling a bad object never gets stuck; the policy denies it (expressible in CEL with oldObject, as a Deny and a Warn policy, not written)"

// decisionRow is one case of the table.
type decisionRow struct {
	name, request        string
	stsguard, kyverno    []outcome
	kubeScore, ksAgrees  string
	agree                string
	why                  string
	hasPolicy, hasExempt bool
	stsguardPairingFlags map[string]bool // per StatefulSet name
	kubeScoreFlags       map[string]bool
	statefulSetJudged    bool
	kubeScoreUnavailable bool
}

// fixtureSpec is the part of test.yaml the table reads.
type fixtureSpec struct {
	Description string          `json:"description"`
	Operation   string          `json:"operation"`
	Phase       string          `json:"phase"`
	DryRun      bool            `json:"dryRun"`
	Policy      json.RawMessage `json:"policy"`
	Expect      struct {
		Denied    bool     `json:"denied"`
		Deny      []string `json:"deny"`
		Warn      []string `json:"warn"`
		Audit     []string `json:"audit"`
		Mutations []string `json:"mutations"`
	} `json:"expect"`
}

// decider sends the cases to the live apiserver.
type decider struct {
	cs       *kubernetes.Clientset
	dyn      *dynamic.DynamicClient
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	warnings *warningLog
	kyverno  bool
	n        int
}

// warningLog collects the API warnings of the decider's requests.
type warningLog struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningLog) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warningLog) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.msgs
	w.msgs = nil
	return m
}

func writeDecisions(ctx context.Context, c config, cs *kubernetes.Clientset, cfg *rest.Config, kyverno bool, outDir string) error {
	root := harness.Root()
	cfg = rest.CopyConfig(cfg)
	w := &warningLog{}
	cfg.WarningHandlerWithContext = w
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	d := &decider{cs: cs, dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), warnings: w, kyverno: kyverno}
	var rows []decisionRow

	examples, err := filepath.Glob(filepath.Join(root, "examples", "*"))
	if err != nil {
		return err
	}
	for _, dir := range examples {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		row, err := d.example(ctx, c, root, dir)
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		rows = append(rows, row)
	}
	cases, err := filepath.Glob(filepath.Join(root, "test", "testdata", "rules", "*", "*"))
	if err != nil {
		return err
	}
	sort.Strings(cases)
	for _, dir := range cases {
		row, err := d.fixture(ctx, c, root, dir)
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		rows = append(rows, row)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	var b bytes.Buffer
	renderDecisions(&b, rows, kyverno)
	path := filepath.Join(outDir, "decisions.md")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nThe decisions table of %d cases: %s\n", len(rows), path)
	return nil
}

// nsFor maps a namespace of a case's files to the namespace the case uses
// on the apiserver: "" and default to base, any other to base-<name>.
func nsFor(base, ns string) string {
	if ns == "" || ns == "default" {
		return base
	}
	return base + "-" + ns
}

// readFile decodes the objects of one YAML file (none when it is missing).
func readFile(path string) ([]*unstructured.Unstructured, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return readObjects(path)
}

// prepare creates the namespaces of objs (base, and one per other namespace
// named), without the side label, and returns their names.
func (d *decider) prepare(ctx context.Context, base string, objs []*unstructured.Unstructured) ([]string, error) {
	names := []string{base}
	labels := map[string]map[string]string{}
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			n := nsFor(base, o.GetName())
			labels[n] = o.GetLabels()
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
			continue
		}
		if n := nsFor(base, o.GetNamespace()); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, n := range names {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: labels[n]}}
		if _, err := d.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("namespace %s: %w", n, err)
		}
	}
	return names, nil
}

// judge adds the Kyverno side's label to the namespaces and waits until
// Kyverno judges writes there (its probe is denied).
func (d *decider) judge(ctx context.Context, namespaces []string) error {
	patch := []byte(fmt.Sprintf(`{"metadata":{"labels":{%q:"kyverno"}}}`, sideLabel))
	for _, n := range namespaces {
		if _, err := d.cs.CoreV1().Namespaces().Patch(ctx, n, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return err
		}
	}
	return waitJudged(ctx, d.cs, &side{name: "kyverno", namespace: namespaces[0]}, nil)
}

// resource returns the dynamic client of o's kind in namespace ns.
func (d *decider) resource(o *unstructured.Unstructured, ns string) (dynamic.ResourceInterface, error) {
	gvk := o.GroupVersionKind()
	m, err := d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == "root" {
		return d.dyn.Resource(m.Resource), nil
	}
	return d.dyn.Resource(m.Resource).Namespace(ns), nil
}

// store creates o as a stored object of the case (unjudged: its namespace
// is not selected yet). Cluster-scoped objects are skipped: no Kyverno
// policy reads them, and cases would collide on their names.
func (d *decider) store(ctx context.Context, base string, o *unstructured.Unstructured) error {
	if o.GetKind() == "Namespace" || o.GetKind() == "StorageClass" {
		return nil
	}
	o = o.DeepCopy()
	ns := nsFor(base, o.GetNamespace())
	o.SetNamespace(ns)
	if clusterIP(o) != "" {
		// The apiserver allocates one from its own range.
		unstructured.RemoveNestedField(o.Object, "spec", "clusterIP")
		unstructured.RemoveNestedField(o.Object, "spec", "clusterIPs")
	}
	ri, err := d.resource(o, ns)
	if err != nil {
		return err
	}
	_, err = ri.Create(ctx, o, metav1.CreateOptions{})
	return err
}

// clusterIP returns the cluster IP address a Service manifest sets ("" for
// none, for None, and for another kind). The fixtures' addresses are of
// another cluster's range, which this apiserver refuses.
func clusterIP(o *unstructured.Unstructured) string {
	if o.GetKind() != "Service" {
		return ""
	}
	ip, _, _ := unstructured.NestedString(o.Object, "spec", "clusterIP")
	if ip == "None" {
		return ""
	}
	return ip
}

// setClusterIP sets a Service manifest's cluster IP address (and
// clusterIPs) to ip.
func setClusterIP(o *unstructured.Unstructured, ip string) {
	_ = unstructured.SetNestedField(o.Object, ip, "spec", "clusterIP")
	_ = unstructured.SetNestedStringSlice(o.Object, []string{ip}, "spec", "clusterIPs")
}

// spareClusterIP returns an address of the apiserver's Service range for a
// dry-run CREATE of a Service that sets one: the last but few of the /24
// that holds the kubernetes Service's address.
func (d *decider) spareClusterIP(ctx context.Context) (string, error) {
	svc, err := d.cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	i := strings.LastIndexByte(svc.Spec.ClusterIP, '.')
	if i < 0 {
		return "", fmt.Errorf("the kubernetes Service's address %q is not IPv4", svc.Spec.ClusterIP)
	}
	return svc.Spec.ClusterIP[:i] + ".250", nil
}

// send sends the request of op (CREATE, UPDATE, DELETE) for o and returns
// Kyverno's outcome.
func (d *decider) send(ctx context.Context, base, op string, o *unstructured.Unstructured, dryRun bool) outcome {
	o = o.DeepCopy()
	ns := nsFor(base, o.GetNamespace())
	o.SetNamespace(ns)
	out := outcome{object: o.GetKind() + "/" + o.GetName()}
	ri, err := d.resource(o, ns)
	if err != nil {
		out.note = err.Error()
		return out
	}
	var opts []string
	if dryRun {
		opts = []string{metav1.DryRunAll}
	}
	d.warnings.take()
	var got *unstructured.Unstructured
	switch op {
	case "DELETE":
		err = ri.Delete(ctx, o.GetName(), metav1.DeleteOptions{DryRun: opts})
	case "UPDATE":
		var stored *unstructured.Unstructured
		if stored, err = ri.Get(ctx, o.GetName(), metav1.GetOptions{}); err == nil {
			o.SetResourceVersion(stored.GetResourceVersion())
			if clusterIP(o) != "" {
				setClusterIP(o, clusterIP(stored)) // the address store gave it
			}
			got, err = ri.Update(ctx, o, metav1.UpdateOptions{DryRun: opts})
		}
	default:
		if clusterIP(o) != "" {
			var ip string
			if ip, err = d.spareClusterIP(ctx); err != nil {
				break
			}
			setClusterIP(o, ip)
		}
		got, err = ri.Create(ctx, o, metav1.CreateOptions{DryRun: opts})
	}
	rules := sets.New[string]()
	for _, w := range d.warnings.take() {
		rules.Insert(ruleIDs(w)...)
	}
	if err != nil {
		out.denied = true
		msg := err.Error()
		if strings.Contains(msg, "admission webhook") && strings.Contains(msg, "kyverno") {
			out.by = "kyverno"
			out.deny = sets.List(sets.New(ruleIDs(msg)...))
			rules.Insert(out.deny...)
		} else {
			out.by = "apiserver"
			if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err) {
				out.note = "the apiserver: " + firstLine(msg, 160)
			} else {
				out.note = "error: " + firstLine(msg, 160)
			}
		}
	}
	if got != nil {
		rules.Insert(mutations(o, got)...)
	}
	out.rules = sets.List(rules)
	return out
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// ruleIDs returns the "[rule: ID]" tags of a message.
func ruleIDs(msg string) []string {
	var ids []string
	for {
		i := strings.Index(msg, "[rule: ")
		if i < 0 {
			return ids
		}
		msg = msg[i+len("[rule: "):]
		j := strings.IndexByte(msg, ']')
		if j < 0 {
			return ids
		}
		ids = append(ids, msg[:j])
		msg = msg[j:]
	}
}

// number returns the number at fields of obj: an int64 as the apiserver's
// JSON decodes it, or a float64 as a manifest's YAML does.
func number(obj map[string]any, fields ...string) (int64, bool) {
	v, ok, _ := unstructured.NestedFieldNoCopy(obj, fields...)
	if !ok {
		return 0, false
	}
	switch n := v.(type) {
	case int64:
		return n, true
	case float64:
		return int64(n), true
	}
	return 0, false
}

// mutations returns the rules whose mutation shows in got, the object as
// the apiserver returned it, against sent.
func mutations(sent, got *unstructured.Unstructured) []string {
	var ids []string
	switch sent.GetKind() {
	case "StatefulSet":
		before, ok := number(sent.Object, "spec", "template", "spec", "terminationGracePeriodSeconds")
		if !ok {
			before = 30
		}
		if after, _ := number(got.Object, "spec", "template", "spec", "terminationGracePeriodSeconds"); after != before {
			ids = append(ids, "termination-grace-period")
		}
		pb, _ := number(sent.Object, "spec", "updateStrategy", "rollingUpdate", "partition")
		if pa, _ := number(got.Object, "spec", "updateStrategy", "rollingUpdate", "partition"); pa != pb {
			ids = append(ids, "rollout-partition")
		}
	case "Service":
		before, _, _ := unstructured.NestedString(sent.Object, "spec", "clusterIP")
		if after, _, _ := unstructured.NestedString(got.Object, "spec", "clusterIP"); before == "" && after == "None" {
			ids = append(ids, "headless-service-default")
		}
	}
	return ids
}

// fixture is one case of test/testdata/rules.
func (d *decider) fixture(ctx context.Context, c config, root, dir string) (decisionRow, error) {
	rel, _ := filepath.Rel(filepath.Join(root, "test", "testdata", "rules"), dir)
	row := decisionRow{name: rel}
	raw, err := os.ReadFile(filepath.Join(dir, "test.yaml"))
	if err != nil {
		return row, err
	}
	var spec fixtureSpec
	if err := yaml.Unmarshal(raw, &spec); err != nil {
		return row, err
	}
	resources, err := readFile(filepath.Join(dir, "resources.yaml"))
	if err != nil {
		return row, err
	}
	objs, err := readFile(filepath.Join(dir, "object.yaml"))
	if err != nil {
		return row, err
	}
	old, err := readFile(filepath.Join(dir, "old.yaml"))
	if err != nil {
		return row, err
	}
	if len(objs) != 1 {
		return row, fmt.Errorf("object.yaml holds %d objects", len(objs))
	}
	obj := objs[0]
	op := spec.Operation
	if op == "" {
		op = "CREATE"
		if len(old) > 0 {
			op = "UPDATE"
		}
	}
	row.request = op + " " + obj.GetKind()
	row.hasPolicy = len(spec.Policy) > 0 && string(spec.Policy) != "null"
	_, row.hasExempt = obj.GetAnnotations()["stsguard.io/exempt"]
	s := outcome{object: obj.GetKind() + "/" + obj.GetName(), denied: spec.Expect.Denied, by: "stsguard", deny: sets.List(sets.New(spec.Expect.Deny...))}
	s.rules = sets.List(sets.New(spec.Expect.Deny...).Insert(spec.Expect.Warn...).Insert(spec.Expect.Audit...).Insert(spec.Expect.Mutations...))
	var notes []string
	if row.hasPolicy {
		notes = append(notes, "with the case's policy")
	}
	if spec.Phase != "" {
		notes = append(notes, "phase "+spec.Phase)
	}
	if spec.DryRun {
		notes = append(notes, "dry run")
	}
	s.note = strings.Join(notes, ", ")
	row.stsguard = []outcome{s}

	if d.kyverno {
		d.n++
		base := fmt.Sprintf("dec-%03d", d.n)
		all := append(slices.Clone(resources), obj)
		all = append(all, old...)
		namespaces, err := d.prepare(ctx, base, all)
		if err != nil {
			return row, err
		}
		for _, o := range resources {
			if err := d.store(ctx, base, o); err != nil {
				return row, fmt.Errorf("resources.yaml %s/%s: %w", o.GetKind(), o.GetName(), err)
			}
		}
		stored := old
		if op == "DELETE" && len(old) == 0 {
			stored = objs // the object deleted is the stored one
		}
		for _, o := range stored {
			if err := d.store(ctx, base, o); err != nil {
				return row, fmt.Errorf("old.yaml %s/%s: %w", o.GetKind(), o.GetName(), err)
			}
		}
		if err := d.judge(ctx, namespaces); err != nil {
			return row, err
		}
		row.kyverno = []outcome{d.send(ctx, base, op, obj, true)}
	} else {
		row.kyverno = []outcome{{object: s.object, skipped: true}}
	}

	if obj.GetKind() == "StatefulSet" && op != "DELETE" {
		row.statefulSetJudged = true
		row.stsguardPairingFlags = map[string]bool{obj.GetName(): sets.New(s.rules...).HasAny(sets.List(pairing)...)}
		files := []string{filepath.Join(dir, "object.yaml")}
		if len(resources) > 0 {
			files = append([]string{filepath.Join(dir, "resources.yaml")}, files...)
		}
		row.kubeScoreFlags, row.kubeScore, row.kubeScoreUnavailable = kubeScore(ctx, c.kubeScore, files)
	}
	decide(&row)
	return row, nil
}

// example is one directory of examples/, applied in kubectl apply -f order.
func (d *decider) example(ctx context.Context, c config, root, dir string) (decisionRow, error) {
	rel, _ := filepath.Rel(root, dir)
	row := decisionRow{name: rel, request: "kubectl apply -f " + rel + "/"}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return row, err
	}
	sort.Strings(files)

	// stsguard: audit's replay of the same apply.
	cmd := exec.CommandContext(ctx, c.stsguard, append([]string{"audit", "-o", "json", "-f"}, dir)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			return row, fmt.Errorf("stsguard audit: %w: %s", err, stderr.String())
		}
	}
	var rep audit.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return row, fmt.Errorf("stsguard audit: %w", err)
	}
	row.stsguardPairingFlags = map[string]bool{}
	for _, o := range rep.Objects {
		out := outcome{object: o.Kind + "/" + o.Name, denied: o.Denied, by: "stsguard", deny: o.Deny}
		out.rules = sets.List(sets.New(o.Deny...).Insert(o.Warn...).Insert(o.Audit...).Insert(o.Mutations...))
		row.stsguard = append(row.stsguard, out)
		if o.Kind == "StatefulSet" {
			row.statefulSetJudged = true
			row.stsguardPairingFlags[o.Name] = sets.New(out.rules...).HasAny(sets.List(pairing)...)
		}
	}

	var objs []*unstructured.Unstructured
	for _, f := range files {
		fileObjs, err := readObjects(f)
		if err != nil {
			return row, err
		}
		objs = append(objs, fileObjs...)
	}
	if d.kyverno {
		d.n++
		base := fmt.Sprintf("dec-%03d", d.n)
		namespaces, err := d.prepare(ctx, base, objs)
		if err != nil {
			return row, err
		}
		if err := d.judge(ctx, namespaces); err != nil {
			return row, err
		}
		for _, o := range objs {
			row.kyverno = append(row.kyverno, d.send(ctx, base, "CREATE", o, false))
		}
	} else {
		for _, o := range objs {
			row.kyverno = append(row.kyverno, outcome{object: o.GetKind() + "/" + o.GetName(), skipped: true})
		}
	}
	row.kubeScoreFlags, row.kubeScore, row.kubeScoreUnavailable = kubeScore(ctx, c.kubeScore, files)
	decide(&row)
	return row, nil
}

// kubeScore runs kube-score on files and returns, per StatefulSet, whether
// statefulset-has-servicename flags it (grade below OK), and a rendering.
func kubeScore(ctx context.Context, bin string, files []string) (map[string]bool, string, bool) {
	if _, err := os.Stat(bin); err != nil {
		return nil, "—", true
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"score", "-o", "json"}, files...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || stdout.Len() == 0 {
			return nil, "error: " + firstLine(stderr.String(), 120), true
		}
	}
	var objs []struct {
		ObjectName string `json:"object_name"`
		TypeMeta   struct {
			Kind string `json:"kind"`
		} `json:"type_meta"`
		Checks []struct {
			Check struct {
				ID string `json:"id"`
			} `json:"check"`
			Grade    int  `json:"grade"`
			Skipped  bool `json:"skipped"`
			Comments []struct {
				Summary string `json:"summary"`
			} `json:"comments"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &objs); err != nil {
		return nil, "error: " + err.Error(), true
	}
	flags := map[string]bool{}
	var parts []string
	for _, o := range objs {
		if o.TypeMeta.Kind != "StatefulSet" {
			continue
		}
		for _, ch := range o.Checks {
			if ch.Check.ID != "statefulset-has-servicename" {
				continue
			}
			// kube-score grades 10 (OK), 7 (almost OK), 5 (warning), 1 (critical).
			flag := !ch.Skipped && ch.Grade < 10
			flags[o.ObjectName] = flag
			r := "ok"
			switch {
			case ch.Skipped:
				r = "skipped"
			case flag:
				r = "flags it"
				if len(ch.Comments) > 0 {
					r += ": " + ch.Comments[0].Summary
				}
			}
			parts = append(parts, r)
		}
	}
	if len(parts) == 0 {
		return flags, "—", false
	}
	return flags, strings.Join(parts, "; "), false
}

// decide fills in agree and why.
func decide(row *decisionRow) {
	// kube-score against stsguard's pairing rules.
	switch {
	case !row.statefulSetJudged:
		row.ksAgrees = "n/a"
	case row.kubeScoreUnavailable:
		row.ksAgrees = "—"
	default:
		row.ksAgrees = "agree"
		for name, flagged := range row.stsguardPairingFlags {
			if ks, ok := row.kubeScoreFlags[name]; ok && ks != flagged {
				row.ksAgrees = "differ"
			}
		}
	}

	if len(row.kyverno) == 0 || row.kyverno[0].skipped {
		row.agree = "—"
		return
	}
	var whys []string
	agree, sameOutcome := true, true
	ky := map[string]outcome{}
	for _, k := range row.kyverno {
		ky[k.object] = k
	}
	for _, s := range row.stsguard {
		k, ok := ky[s.object]
		if !ok {
			continue
		}
		if s.denied == k.denied && sets.New(s.rules...).Equal(sets.New(k.rules...)) {
			continue
		}
		agree = false
		if s.denied != k.denied {
			sameOutcome = false
		}
		var why []string
		for _, r := range sets.List(sets.New(s.rules...).Difference(covered)) {
			why = append(why, r+": "+notCovered[r])
		}
		if row.hasPolicy {
			why = append(why, "the case sets a stsguard policy (action, exemption or profile), which the Kyverno policies do not read")
		}
		if row.hasExempt && !slices.Contains(s.rules, "exemption-invalid") {
			why = append(why, "stsguard's exemption annotation; Kyverno would need a PolicyException")
		}
		if slices.Contains(s.rules, "password-secret-ref") && !s.denied && k.denied {
			why = append(why, "stsguard moves the literal into a Secret it writes in the same request; a Kyverno policy can only deny it")
		}
		if k.by == "apiserver" {
			why = append(why, "the apiserver refused it before Kyverno's validating webhook saw it")
		}
		if w, ok := explained[row.name]; ok {
			why = append(why, w)
		}
		if len(why) == 0 {
			why = append(why, fmt.Sprintf("%s: stsguard %s; Kyverno %s", s.object, s, k))
		}
		whys = append(whys, why...)
	}
	switch {
	case agree:
		row.agree = "agree"
	case sameOutcome:
		row.agree = "same outcome"
	default:
		row.agree = "**outcome differs**"
	}
	row.why = strings.Join(slices.Compact(whys), "; ")
}

func renderDecisions(b *bytes.Buffer, rows []decisionRow, kyverno bool) {
	agree, same, differ, ksAgree, ksDiffer := 0, 0, 0, 0, 0
	for _, r := range rows {
		switch r.agree {
		case "agree":
			agree++
		case "same outcome":
			same++
		case "**outcome differs**":
			differ++
		}
		switch r.ksAgrees {
		case "agree":
			ksAgree++
		case "differ":
			ksDiffer++
		}
	}
	fmt.Fprintf(b, "## Decisions: stsguard, Kyverno's policies, kube-score\n\n")
	if !kyverno {
		fmt.Fprintln(b, "Kyverno was not run (no bin/peers/kyverno): its column is empty.")
		fmt.Fprintln(b)
	}
	fmt.Fprintf(b, "%d cases. stsguard and the Kyverno policies: %d agree (the same outcome, and the same rules flagged: denied, warned or mutated); "+
		"%d have the same outcome (admitted or denied) but differ in what is flagged or who denies; %d have a different outcome. "+
		"kube-score's statefulset-has-servicename agrees with stsguard's pairing rules (service-name-empty, headless-service-missing, "+
		"headless-service-not-headless, headless-service-selector-mismatch) on %d of the %d cases that judge a StatefulSet, and differs on %d.\n\n",
		len(rows), agree, same, differ, ksAgree, ksAgree+ksDiffer, ksDiffer)
	fmt.Fprintln(b, "| case | request | stsguard | Kyverno policies | | kube-score statefulset-has-servicename | | why they differ |")
	fmt.Fprintln(b, "| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.name, r.request, cell(r.stsguard), cell(r.kyverno), r.agree, r.kubeScore, r.ksAgrees, escape(r.why))
	}
}

func cell(os []outcome) string {
	if len(os) == 1 {
		return escape(os[0].String())
	}
	var parts []string
	for _, o := range os {
		parts = append(parts, o.object+": "+o.String())
	}
	return escape(strings.Join(parts, "<br>"))
}

func escape(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
