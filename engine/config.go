package engine

import (
	"crypto/rand"
	"io"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/stsguard/stsguard/credentials"
)

// NamespaceExemption exempts the objects of some namespaces from some rules.
type NamespaceExemption struct {
	// Rules are the IDs exempted; empty means every rule and mutator.
	Rules []string
	// Namespaces are namespace names.
	Namespaces []string
	// NamespaceSelector selects namespaces by label; nil selects none.
	NamespaceSelector labels.Selector
}

// Config is the engine's tunable knowledge and policy. DefaultConfig returns
// today's built-in table with every rule at its default action.
type Config struct {
	// Credentials is what the rules know about database images and
	// credentials: image profiles, credential name patterns, weak passwords.
	Credentials credentials.Config
	// Actions overrides the default action of rules by ID (Deny, Warn,
	// Audit or Off).
	Actions map[string]Action
	// Mutations turns mutators off by ID (false); absent means on.
	Mutations map[string]bool
	// Exemptions exempt namespaces from rules.
	Exemptions []NamespaceExemption
	// Rand is the source of generated passwords; crypto/rand.Reader by default.
	Rand io.Reader
}

// DefaultConfig returns the built-in credential knowledge
// (credentials.Default), no action overridden, no exemption, and
// crypto/rand as the source of generated passwords.
func DefaultConfig() Config {
	return Config{Credentials: credentials.Default(), Rand: rand.Reader}
}

// action returns the configured action of rule id.
func (c *Config) action(id string, def Action) Action {
	if a, ok := c.Actions[id]; ok {
		return a
	}
	return def
}

// mutationOn reports whether mutator id is on (Mutations does not turn it off).
func (c *Config) mutationOn(id string) bool {
	on, ok := c.Mutations[id]
	return !ok || on
}
