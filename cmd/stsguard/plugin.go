package main

import (
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
)

const (
	// defaultName is the command's name when it is run as stsguard.
	defaultName = "stsguard"
	// pluginPrefix is how kubectl finds a plugin: `kubectl stsguard` runs
	// the executable kubectl-stsguard that it finds on PATH.
	pluginPrefix = "kubectl-"
	// completePrefix is how kubectl finds what completes a plugin's
	// arguments: kubectl_complete-stsguard ARGS... TO-COMPLETE, on PATH,
	// which answers as cobra's __complete does.
	completePrefix = "kubectl_complete-"
)

// invocation returns the name help and usage give to the command run as
// argv0: "kubectl stsguard" when it runs as the kubectl plugin
// kubectl-stsguard (kubectl, and the link krew installs, run it under that
// name; kubectl-stsguard.exe on Windows), else "stsguard". complete is
// true when it runs as kubectl_complete-stsguard, kubectl's completion
// helper for the plugin (a link to the same binary).
func invocation(argv0 string) (name string, complete bool) {
	base := filepath.Base(argv0)
	if ext := filepath.Ext(base); strings.EqualFold(ext, ".exe") {
		base = strings.TrimSuffix(base, ext)
	}
	plugin, ok := strings.CutPrefix(base, pluginPrefix)
	if !ok {
		plugin, ok = strings.CutPrefix(base, completePrefix)
		complete = ok
	}
	if !ok || plugin == "" {
		return defaultName, false
	}
	// kubectl runs kubectl-a-b as `kubectl a b` and kubectl-a_b as
	// `kubectl a-b`, for a plugin renamed on the way.
	return "kubectl " + strings.ReplaceAll(strings.ReplaceAll(plugin, "-", " "), "_", "-"), complete
}

// exampleCommand finds "stsguard " where an example runs it: at the start
// of a line or after a pipe.
var exampleCommand = regexp.MustCompile(`(?m)(^\s*|\|\s*)` + defaultName + ` `)

// asPlugin makes root the kubectl plugin named name ("kubectl stsguard"):
// usage lines, help and examples say `kubectl stsguard ...`.
//
// serve stays, hidden: the plugin is for the people who run kubectl (audit,
// expand, rules, version), and serve is the webhook server that the
// Deployment runs as stsguard; it still runs when named, since the one
// binary is both. The completion command is hidden too: the scripts it
// writes complete a command named stsguard, and kubectl completes a plugin
// through kubectl_complete-stsguard instead (see invocation).
func asPlugin(root *cobra.Command, name string) {
	root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: name}
	root.CompletionOptions.HiddenDefaultCmd = true
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.Example = exampleCommand.ReplaceAllString(c.Example, "${1}"+name+" ")
		if c.Name() == "serve" && c.Parent() == root {
			c.Hidden = true
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
