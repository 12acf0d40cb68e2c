package rules_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/lookuptest"
	"github.com/stsguard/stsguard/kinds"
	"github.com/stsguard/stsguard/manifest"
	"github.com/stsguard/stsguard/policy"
	"github.com/stsguard/stsguard/rules"
)

// fixturesDir holds one directory per rule ID, and in it one directory per
// case: test/testdata/rules/<rule-id>/<case>/ (see TestRuleFixtures).
var fixturesDir = filepath.Join("..", "test", "testdata", "rules")

// fixtureNamespace is the namespace of the objects of a case that set none,
// as kubectl's default context would give them.
const fixtureNamespace = "default"

// The files of a case directory; no other file may be there.
const (
	resourcesFile = "resources.yaml" // optional: the objects stored before the request
	objectFile    = "object.yaml"    // the request's object (on DELETE: the object deleted)
	oldFile       = "old.yaml"       // optional: the stored object; makes the request an UPDATE
	specFile      = "test.yaml"      // the case: what is asked and what is expected
)

// fixtureSpec is test.yaml, decoded strictly.
type fixtureSpec struct {
	// Description says what the case is about, in one line.
	Description string `json:"description"`
	// Operation is CREATE, UPDATE or DELETE; by default UPDATE when old.yaml
	// exists and CREATE otherwise.
	Operation admissionv1.Operation `json:"operation,omitempty"`
	// Phase is MutateAndValidate (the default), Mutating or Validating.
	Phase string `json:"phase,omitempty"`
	// DryRun is request.dryRun.
	DryRun bool `json:"dryRun,omitempty"`
	// Policy is the body of a config.stsguard.io/v1alpha1 Policy (rules,
	// mutations, exemptions, imageProfiles, ...; apiVersion and kind may be
	// left out), read by policy.Parse as `stsguard serve --config` reads it.
	Policy json.RawMessage `json:"policy,omitempty"`
	// Expect is the decision expected.
	Expect fixtureExpect `json:"expect"`
}

// fixtureExpect is the decision a case expects. Rule ID lists are sorted
// and hold each ID once; an absent list is an empty one. Fields, Exemptions
// and Secrets are compared only when given.
type fixtureExpect struct {
	// Denied is whether the request is refused.
	Denied bool `json:"denied"`
	// Deny, Warn and Audit are the rules with a finding of that action.
	Deny  []string `json:"deny"`
	Warn  []string `json:"warn"`
	Audit []string `json:"audit"`
	// Mutations are the mutators that changed the object or asked for a
	// Secret to be written.
	Mutations []string `json:"mutations"`
	// Fields are, per rule listed, the field paths of its findings and
	// changes, sorted, each once. Rules not listed are not compared.
	Fields map[string][]string `json:"fields,omitempty"`
	// Exemptions are the exemptions used, sorted by rule.
	Exemptions []fixtureExemption `json:"exemptions,omitempty"`
	// Secrets are the Secret writes the decision plans, as
	// credentials.SecretRequest.String() renders them (keys, never values).
	Secrets []string `json:"secrets,omitempty"`
}

// fixtureExemption is one engine.Exemption.
type fixtureExemption struct {
	Rule   string `json:"rule"`
	By     string `json:"by"`
	Reason string `json:"reason"`
}

// fixtureOutcome is what a case's expectation is compared with.
type fixtureOutcome struct {
	Denied     bool
	Deny       []string
	Warn       []string
	Audit      []string
	Mutations  []string
	Fields     map[string][]string
	Exemptions []fixtureExemption
	Secrets    []string
}

// fixtureCase is one case directory, loaded and admitted.
type fixtureCase struct {
	rule, name, dir string
	spec            fixtureSpec
	cfg             engine.Config
	req             *engine.Request
	inputs          []metav1.Object // resources, object and old, for the secret guard
	decision        *engine.Decision
	err             error // why the case could not be loaded or admitted
}

// fixtureRand is the deterministic password source of every case, so that a
// generated password is the same on every run (and never a real one).
func fixtureRand() *bytes.Reader { return bytes.NewReader(bytes.Repeat([]byte{7}, 4096)) }

// TestRuleFixtures runs every case under test/testdata/rules/<rule-id>/<case>/
// through the engine (rules.New under engine.DefaultConfig, or the case's
// policy) and compares the decision with the case's test.yaml. Adding a case
// adds YAML only. It fails on a directory that names no rule, on a case
// without object.yaml or test.yaml or with another file, on an unknown key in
// test.yaml, and for a rule of rules.Catalog() without a case in its
// directory where it fires (a finding or a change of it in the decision) and
// one where it does not. It also checks that no finding, change message or
// patch value holds a secret of the inputs (checkNoSecretValues).
func TestRuleFixtures(t *testing.T) {
	catalog := rules.Catalog()
	known := map[string]bool{}
	for _, m := range catalog {
		known[m.ID] = true
	}
	ruleDirs, err := os.ReadDir(fixturesDir)
	require.NoError(t, err)
	var cases []*fixtureCase
	for _, rd := range ruleDirs {
		path := filepath.Join(fixturesDir, rd.Name())
		if !rd.IsDir() || !known[rd.Name()] {
			t.Errorf("%s: a fixture that matches no rule: test/testdata/rules/ holds one directory per rule ID (`stsguard rules` lists them)", path)
			continue
		}
		entries, err := os.ReadDir(path)
		require.NoError(t, err)
		for _, ce := range entries {
			if !ce.IsDir() {
				t.Errorf("%s: not a case directory: put each case in test/testdata/rules/%s/<case>/", filepath.Join(path, ce.Name()), rd.Name())
				continue
			}
			cases = append(cases, loadFixture(rd.Name(), ce.Name(), filepath.Join(path, ce.Name()), known))
		}
	}

	fires, quiet, broken := map[string][]string{}, map[string][]string{}, map[string]int{}
	for _, c := range cases {
		if c.err != nil {
			broken[c.rule]++
			continue
		}
		if firedRules(c.decision)[c.rule] {
			fires[c.rule] = append(fires[c.rule], c.name)
		} else {
			quiet[c.rule] = append(quiet[c.rule], c.name)
		}
	}
	for _, m := range catalog {
		dir := filepath.Join(fixturesDir, m.ID)
		also := ""
		if broken[m.ID] > 0 {
			also = fmt.Sprintf(" (and %d of its cases could not be run: see below)", broken[m.ID])
		}
		if len(fires[m.ID]) == 0 {
			t.Errorf("rule %s: no case in %s where it fires (a finding or a change of %s in the decision): add one%s", m.ID, dir, m.ID, also)
		}
		if len(quiet[m.ID]) == 0 {
			t.Errorf("rule %s: no case in %s where it does not fire: add one%s", m.ID, dir, also)
		}
	}

	for _, c := range cases {
		t.Run(c.rule+"/"+c.name, func(t *testing.T) {
			require.NoError(t, c.err)
			got := outcome(c.decision, c.spec.Expect)
			want := fixtureOutcome{
				Denied: c.spec.Expect.Denied, Deny: orEmpty(c.spec.Expect.Deny), Warn: orEmpty(c.spec.Expect.Warn),
				Audit: orEmpty(c.spec.Expect.Audit), Mutations: orEmpty(c.spec.Expect.Mutations),
				Fields: c.spec.Expect.Fields, Exemptions: c.spec.Expect.Exemptions, Secrets: c.spec.Expect.Secrets,
			}
			assert.Equal(t, want, got, "%s: %s\nthe decision (want: test.yaml's expect, got: the engine's):\n%s",
				c.dir, c.spec.Description, describeDecision(c.decision))
			checkNoSecretValues(t, c)
		})
	}
}

// loadFixture reads the case in dir and admits its request.
func loadFixture(rule, name, dir string, known map[string]bool) *fixtureCase {
	c := &fixtureCase{rule: rule, name: name, dir: dir}
	fail := func(format string, args ...any) *fixtureCase {
		c.err = fmt.Errorf("%s: %s", dir, fmt.Sprintf(format, args...))
		return c
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fail("%v", err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		switch e.Name() {
		case resourcesFile, objectFile, oldFile, specFile:
			have[e.Name()] = true
		default:
			return fail("%s is not one of %s, %s, %s, %s", e.Name(), resourcesFile, objectFile, oldFile, specFile)
		}
	}
	for _, f := range []string{objectFile, specFile} {
		if !have[f] {
			return fail("a case needs %s", f)
		}
	}

	raw, err := os.ReadFile(filepath.Join(dir, specFile))
	if err != nil {
		return fail("%v", err)
	}
	if err := yaml.UnmarshalStrict(raw, &c.spec); err != nil {
		return fail("%s: %v", specFile, err)
	}
	if err := checkSpec(&c.spec, have[oldFile], known); err != nil {
		return fail("%s: %v", specFile, err)
	}

	c.cfg = engine.DefaultConfig()
	if len(c.spec.Policy) > 0 {
		var doc map[string]any
		if err := json.Unmarshal(c.spec.Policy, &doc); err != nil {
			return fail("%s: policy: %v", specFile, err)
		}
		if _, ok := doc["apiVersion"]; !ok {
			doc["apiVersion"] = policy.APIVersion
		}
		if _, ok := doc["kind"]; !ok {
			doc["kind"] = policy.Kind
		}
		js, err := json.Marshal(doc)
		if err != nil {
			return fail("%s: policy: %v", specFile, err)
		}
		if c.cfg, err = policy.Parse(js); err != nil {
			return fail("%s: policy: %v", specFile, err)
		}
	}
	c.cfg.Rand = fixtureRand()
	e, err := rules.New(c.cfg)
	if err != nil {
		return fail("%v", err)
	}

	obj, err := readObject(filepath.Join(dir, objectFile))
	if err != nil {
		return fail("%v", err)
	}
	kind, _ := kinds.Of(obj)
	c.req = &engine.Request{Phase: phases[c.spec.Phase], Kind: kind.Kind, Operation: c.spec.Operation, DryRun: c.spec.DryRun}
	var stored kinds.Object // the object the cluster holds already
	switch c.spec.Operation {
	case admissionv1.Delete:
		c.req.OldObject, stored = obj, obj
	case admissionv1.Update:
		old, err := readObject(filepath.Join(dir, oldFile))
		if err != nil {
			return fail("%v", err)
		}
		if reflect.TypeOf(old) != reflect.TypeOf(obj) {
			return fail("%s holds a %T, %s a %T: an UPDATE keeps the kind", oldFile, old, objectFile, obj)
		}
		c.req.Object, c.req.OldObject, stored = obj, old, old
	default:
		c.req.Object = obj
	}
	c.inputs = append(c.inputs, obj)
	if c.req.OldObject != nil && c.req.OldObject != obj {
		c.inputs = append(c.inputs, c.req.OldObject)
	}

	// The world: resources.yaml, and the stored object, as the informer
	// cache holds it.
	lk, err := lookuptest.NewObjects()
	if err != nil {
		return fail("%v", err)
	}
	seen := map[string]string{}
	add := func(o kinds.Object, from string) error {
		k, _ := kinds.Of(o)
		id := fmt.Sprintf("%s %s/%s", k.Kind, o.GetNamespace(), o.GetName())
		if prev, dup := seen[id]; dup {
			return fmt.Errorf("%s is in %s and in %s: the stored object is in the world already, and each object once", id, prev, from)
		}
		seen[id] = from
		return lk.Add(o)
	}
	if stored != nil {
		from := oldFile
		if c.spec.Operation == admissionv1.Delete {
			from = objectFile
		}
		if err := add(stored, from); err != nil {
			return fail("%v", err)
		}
	}
	if have[resourcesFile] {
		file := filepath.Join(dir, resourcesFile)
		data, err := os.ReadFile(file)
		if err != nil {
			return fail("%v", err)
		}
		objs, errs := manifest.Parse(file, data, fixtureNamespace)
		if len(errs) > 0 {
			return fail("%v", errs[0])
		}
		for _, o := range objs {
			ao, ok := o.Object.(kinds.Object)
			if !ok {
				return fail("%s:%d: %s %s is not a kind the rules read (StatefulSet, Service, Secret, StorageClass, Namespace, PersistentVolumeClaim)", file, o.Line, o.GVK.Kind, o.Name)
			}
			if err := add(ao, resourcesFile); err != nil {
				return fail("%v", err)
			}
			c.inputs = append(c.inputs, ao)
		}
	}

	c.decision, err = e.Admit(context.Background(), c.req, lk)
	if err != nil {
		return fail("Admit: %v", err)
	}
	return c
}

var phases = map[string]engine.Phase{
	"":                  engine.MutateAndValidate,
	"MutateAndValidate": engine.MutateAndValidate,
	"Mutating":          engine.Mutating,
	"Validating":        engine.Validating,
}

// checkSpec validates test.yaml and fills in the default operation.
func checkSpec(s *fixtureSpec, hasOld bool, known map[string]bool) error {
	if strings.TrimSpace(s.Description) == "" {
		return fmt.Errorf("description: say what the case is about")
	}
	if _, ok := phases[s.Phase]; !ok {
		return fmt.Errorf("phase %q: use MutateAndValidate, Mutating or Validating", s.Phase)
	}
	switch s.Operation {
	case "":
		s.Operation = admissionv1.Create
		if hasOld {
			s.Operation = admissionv1.Update
		}
	case admissionv1.Create, admissionv1.Delete:
		if hasOld {
			return fmt.Errorf("operation %s: %s makes the request an UPDATE (on DELETE, %s is the object deleted)", s.Operation, oldFile, objectFile)
		}
	case admissionv1.Update:
		if !hasOld {
			return fmt.Errorf("operation UPDATE needs %s, the stored object", oldFile)
		}
	default:
		return fmt.Errorf("operation %q: use CREATE, UPDATE or DELETE", s.Operation)
	}
	x := &s.Expect
	lists := []struct {
		name string
		ids  []string
	}{{"deny", x.Deny}, {"warn", x.Warn}, {"audit", x.Audit}, {"mutations", x.Mutations}}
	for rule, paths := range x.Fields {
		if !known[rule] {
			return fmt.Errorf("expect.fields: %q is not a rule ID", rule)
		}
		if !sortedUnique(paths) {
			return fmt.Errorf("expect.fields[%s]: list each path once, sorted", rule)
		}
	}
	for _, l := range lists {
		if !sortedUnique(l.ids) {
			return fmt.Errorf("expect.%s: list each rule ID once, sorted", l.name)
		}
		for _, id := range l.ids {
			if !known[id] {
				return fmt.Errorf("expect.%s: %q is not a rule ID", l.name, id)
			}
		}
	}
	if x.Denied != (len(x.Deny) > 0) {
		return fmt.Errorf("expect.denied is %v but expect.deny lists %v: a request is denied exactly when a rule denies it", x.Denied, x.Deny)
	}
	return nil
}

func sortedUnique(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// readObject reads the one object of file: a StatefulSet, Service or Secret.
func readObject(file string) (kinds.Object, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	objs, errs := manifest.Parse(file, data, fixtureNamespace)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	if len(objs) != 1 {
		return nil, fmt.Errorf("%s: holds %d objects; it must hold one", file, len(objs))
	}
	o, ok := objs[0].Object.(kinds.Object)
	if k, known := kinds.Of(o); !ok || !known || !k.Judged {
		return nil, fmt.Errorf("%s: %s is not a kind stsguard admits (StatefulSet, Service, Secret)", file, objs[0].GVK.Kind)
	}
	return o, nil
}

// firedRules are the rules with a finding or a change in d.
func firedRules(d *engine.Decision) map[string]bool {
	out := map[string]bool{}
	for _, f := range d.Findings {
		out[f.Rule] = true
	}
	for _, c := range d.Mutation.Changes() {
		out[c.Rule] = true
	}
	for _, s := range d.Mutation.Secrets() {
		out[s.Rule] = true
	}
	return out
}

// outcome is d as a case states it; Fields, Exemptions and Secrets only
// when the case gives them.
func outcome(d *engine.Decision, x fixtureExpect) fixtureOutcome {
	byAction := func(a engine.Action) []string {
		var ids []string
		for _, f := range d.Findings.ByAction(a) {
			ids = append(ids, f.Rule)
		}
		return uniqueSorted(ids)
	}
	o := fixtureOutcome{Denied: d.Denied(), Deny: byAction(engine.Deny), Warn: byAction(engine.Warn), Audit: byAction(engine.Audit)}
	var mutators []string
	paths := map[string][]string{}
	for _, c := range d.Mutation.Changes() {
		mutators = append(mutators, c.Rule)
		paths[c.Rule] = append(paths[c.Rule], c.Field)
	}
	for _, s := range d.Mutation.Secrets() {
		mutators = append(mutators, s.Rule)
	}
	o.Mutations = uniqueSorted(mutators)
	for _, f := range d.Findings {
		paths[f.Rule] = append(paths[f.Rule], f.Error.Field)
	}
	if x.Fields != nil {
		o.Fields = map[string][]string{}
		for rule := range x.Fields {
			o.Fields[rule] = uniqueSorted(paths[rule])
		}
	}
	if x.Exemptions != nil {
		o.Exemptions = []fixtureExemption{}
		for _, e := range d.Exemptions {
			o.Exemptions = append(o.Exemptions, fixtureExemption{Rule: e.Rule, By: e.By, Reason: e.Reason})
		}
		sort.SliceStable(o.Exemptions, func(i, j int) bool { return o.Exemptions[i].Rule < o.Exemptions[j].Rule })
	}
	if x.Secrets != nil {
		o.Secrets = []string{}
		for _, s := range d.Mutation.Secrets() {
			o.Secrets = append(o.Secrets, s.String())
		}
	}
	return o
}

func uniqueSorted(s []string) []string {
	out := append([]string{}, s...)
	sort.Strings(out)
	return slices.Compact(out)
}

// describeDecision renders d for a failure message: every finding as the
// user reads it, every change, every Secret write and exemption.
func describeDecision(d *engine.Decision) string {
	var b strings.Builder
	for _, f := range d.Findings {
		fmt.Fprintf(&b, "  %s: %s\n", f.Action, f)
	}
	for _, c := range d.Mutation.Changes() {
		fmt.Fprintf(&b, "  Mutate: %s\n", c.Warning())
	}
	for _, s := range d.Mutation.Secrets() {
		fmt.Fprintf(&b, "  Secret: %s [rule: %s]\n", s, s.Rule)
	}
	for _, e := range d.Exemptions {
		fmt.Fprintf(&b, "  Exempt: %s by %s (%s)\n", e.Rule, e.By, e.Reason)
	}
	if b.Len() == 0 {
		return "  nothing: no finding, no change\n"
	}
	return b.String()
}

// minGuardedLen is the length below which a value is not looked for inside
// texts: a value that short is no password, and "yes" or "app" may be any
// word of a message.
const minGuardedLen = 6

// checkNoSecretValues checks that no finding, change message or patch value
// of c's decision holds a secret of its inputs: the data of every Secret,
// the literal value of every env var named like a credential or a password,
// and the values of the Secrets the decision writes (moved or generated).
// The Secret writes themselves (credentials.SecretRequest) are where those
// values belong, and are not looked at. A finding's BadValue must equal no
// such value at all; its message, and a change's message and patch value,
// must not contain one, except a value on the weak-password list (public
// defaults, and words such as "password" or "mysql" that stsguard's own
// prose uses) or one shorter than minGuardedLen.
func checkNoSecretValues(t *testing.T, c *fixtureCase) {
	t.Helper()
	values := map[string]string{} // value -> where it comes from
	note := func(v []byte, from string) {
		if s := string(v); strings.TrimSpace(s) != "" && !strings.Contains(s, "$(") {
			values[s] = from
		}
	}
	for _, o := range c.inputs {
		switch x := o.(type) {
		case *corev1.Secret:
			for k, v := range x.Data {
				note(v, fmt.Sprintf("Secret %s key %s", x.Name, k))
			}
		case *appsv1.StatefulSet:
			pod := &x.Spec.Template.Spec
			for _, cs := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
				for _, ctr := range cs {
					p := c.cfg.Credentials.Profile(ctr.Image)
					for _, e := range ctr.Env {
						if e.Value != "" && (c.cfg.Credentials.IsCredentialEnv(e.Name) || c.cfg.Credentials.IsPasswordName(e.Name, p)) {
							note([]byte(e.Value), fmt.Sprintf("StatefulSet %s container %s env %s", x.Name, ctr.Name, e.Name))
						}
					}
				}
			}
		}
	}
	for _, s := range c.decision.Mutation.Secrets() {
		for k, v := range s.Data() {
			note(v, fmt.Sprintf("the value planned for Secret %s key %s", s.Name, k))
		}
	}

	type text struct{ what, s string }
	var texts []text
	for _, f := range c.decision.Findings {
		texts = append(texts, text{"the message of the finding of " + f.Rule + " at " + f.Error.Field, f.Error.Detail})
		if _, omitted := f.Error.BadValue.(field.OmitValueType); !omitted && f.Error.BadValue != nil {
			bad := fmt.Sprint(f.Error.BadValue)
			if from, ok := values[bad]; ok {
				t.Errorf("%s: the finding of %s at %s gives as its value the value of %s", c.dir, f.Rule, f.Error.Field, from)
			}
			texts = append(texts, text{"the value of the finding of " + f.Rule + " at " + f.Error.Field, bad})
		}
	}
	for _, ch := range c.decision.Mutation.Changes() {
		texts = append(texts, text{"the message of the change of " + ch.Rule + " at " + ch.Field, ch.Message})
	}
	for _, op := range c.decision.Mutation.Patch() {
		js, err := json.Marshal(op.Value)
		require.NoError(t, err)
		s := string(js)
		if str, ok := op.Value.(string); ok {
			s = str // an annotation, as it would be stored
		}
		texts = append(texts, text{"the patch value at " + op.Path, s})
	}
	for v, from := range values {
		if len(strings.TrimSpace(v)) < minGuardedLen || c.cfg.Credentials.IsWeakPassword([]byte(v)) {
			continue
		}
		for _, tx := range texts {
			if strings.Contains(tx.s, v) {
				t.Errorf("%s: %s holds the value of %s", c.dir, tx.what, from)
			}
		}
	}
}
