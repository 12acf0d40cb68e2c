// Package rules declares stsguard's built-in rules and mutators: what is
// wrong with a StatefulSet, its governing Service and the Secrets its pods
// use, and the safe defaults stsguard sets.
//
// Each rule is declared once, next to its check, in the file named after
// its ID: rule headless-service-missing is the engine.Rule
// headlessServiceMissing in headless-service-missing.go, with its ID,
// area, default action, description and its check for each kind it judges.
// A check is a plain function over a typed object (an engine.Input) and a
// read-only engine.Lookup of the objects it references; it returns a
// field.ErrorList in the style of Kubernetes' pkg/apis/apps/validation. A
// mutator changes the engine's private copy of the object and records each
// change as a JSON patch operation. All lists the declarations in the order
// they run; the catalog, `stsguard rules` and docs/rules.md derive from
// them. Helpers shared within an area live in pairing.go, credentials.go,
// storage.go, resize.go (the resize plan `stsguard expand` executes) and
// rollout.go.
//
// To add a rule: declare it in rules/<id>.go, add it to All, and add
// fixture directories under test/testdata/rules/<id>/ (one case where it
// fires, one where it does not).
package rules
