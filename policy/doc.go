// Package policy reads stsguard's policy file, a versioned YAML document
//
//	apiVersion: config.stsguard.io/v1alpha1
//	kind: Policy
//
// that sets per rule the action (Deny, Warn, Audit, Off, the vocabulary of
// ValidatingAdmissionPolicy's validationActions), turns mutations on or off,
// exempts namespaces, and tunes the knowledge rules use (image profiles,
// credential and password name patterns, weak passwords). It decodes
// strictly (unknown and duplicate fields are errors), validates with field
// paths, and turns the file into an engine.Engine of the built-in rules
// (rules.New). Holder keeps the engine current while the file changes.
package policy
