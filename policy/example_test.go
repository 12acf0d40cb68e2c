package policy_test

import (
	"fmt"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/policy"
	"github.com/stsguard/stsguard/rules"
)

// A policy file becomes an engine configuration (Parse, or Load for a
// path), and that configuration an engine of the built-in rules
// (rules.New). Rules the file does not name keep their default action.
func ExampleParse() {
	cfg, err := policy.Parse([]byte(`
apiVersion: config.stsguard.io/v1alpha1
kind: Policy
rules:
  headless-service-delete: Deny
  readiness-probe-missing: Audit
mutations:
  termination-grace-period: Off
exemptions:
- namespaces: [sandbox]
  rules: [weak-password]
`))
	if err != nil {
		panic(err)
	}
	e, err := rules.New(cfg)
	if err != nil {
		panic(err)
	}
	for _, id := range []string{rules.HeadlessServiceDelete, rules.ReadinessProbeMissing, rules.HeadlessServiceMissing, rules.TerminationGracePeriod} {
		fmt.Printf("%s: %s\n", id, e.Action(id))
	}
	for _, x := range cfg.Exemptions {
		fmt.Printf("exempt namespaces %v from %v\n", x.Namespaces, x.Rules)
	}
	// Output:
	// headless-service-delete: Deny
	// readiness-probe-missing: Audit
	// headless-service-missing: Warn
	// termination-grace-period: Off
	// exempt namespaces [sandbox] from [weak-password]
}

// A policy that names a rule that does not exist, or sets an action that does not exist, is
// refused with the path of the field at fault, before any engine runs it.
func ExampleParse_invalid() {
	_, err := policy.Parse([]byte(`
apiVersion: config.stsguard.io/v1alpha1
kind: Policy
rules:
  weak-pasword: Deny
  readiness-probe-missing: Block
`))
	fmt.Println(err)
	// Output:
	// [rules[readiness-probe-missing]: Unsupported value: "Block": supported values: "Deny", "Warn", "Audit", "Off", rules[weak-pasword]: Not found: "weak-pasword": no rule or mutation has this ID; `stsguard rules` lists them (docs/rules.md)]
}

// Holder is how stsguard serve keeps the engine of a policy file current:
// NewHolder loads the file, Engine returns the engine in force, and Start
// (a manager.Runnable) reloads the file when it changes.
func ExampleNewHolder() {
	h, err := policy.NewHolder("../examples/policy.yaml", engine.DefaultConfig(), 0, prometheus.NewRegistry(), logr.Discard())
	if err != nil {
		panic(err)
	}
	fmt.Println(rules.ReadinessProbeMissing+":", h.Engine().Action(rules.ReadinessProbeMissing))
	// Output:
	// readiness-probe-missing: Audit
}
