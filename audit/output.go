package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/jstemmer/go-junit-report/v2/junit"
	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/version"
	"github.com/stsguard/stsguard/kinds"
)

// Formats returns the output formats of Write, in a new slice each call.
func Formats() []string { return []string{"text", "json", "sarif", "junit"} }

// Write writes r in format ("text", "json", "sarif" or "junit"). color
// applies to text only. Options that change what counts as a failure
// (failOn) apply to junit.
func Write(w io.Writer, r *Report, format string, color bool, failOn engine.Action) error {
	switch format {
	case "text":
		return writeText(w, r, color)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(r)
	case "sarif":
		return writeSARIF(w, r)
	case "junit":
		return writeJUnit(w, r, failOn)
	default:
		return fmt.Errorf("unknown output format %q; use one of %s", format, strings.Join(Formats(), ", "))
	}
}

// where names an object for people: "StatefulSet default/web (x.yaml:3)".
func where(kind, ns, name, file string, line int) string {
	s := kind + " "
	if ns != "" {
		s += ns + "/"
	}
	s += name
	switch {
	case file != "" && line > 0:
		s += fmt.Sprintf(" (%s:%d)", file, line)
	case file != "":
		s += " (" + file + ")"
	}
	return s
}

// ANSI colours of the text output, used only on a terminal.
const (
	red, yellow, blue, green, bold, reset = "\x1b[31m", "\x1b[33m", "\x1b[34m", "\x1b[32m", "\x1b[1m", "\x1b[0m"
)

func writeText(w io.Writer, r *Report, color bool) error {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + reset
	}
	var b strings.Builder
	for _, e := range r.Errors {
		loc := e.File
		if e.Line > 0 {
			loc = fmt.Sprintf("%s:%d", e.File, e.Line)
		}
		fmt.Fprintf(&b, "%s %s: %s\n\n", paint(red+bold, "ERROR"), loc, e.Message)
	}
	for i := range r.Objects {
		d := &r.Objects[i]
		fs := r.FindingsOf(d)
		if len(fs) == 0 {
			continue
		}
		header := where(d.Kind, d.Namespace, d.Name, d.File, d.Line)
		if d.Operation == admissionv1.Update {
			header += ": an UPDATE (it exists already)"
		}
		fmt.Fprintln(&b, paint(bold, header))
		for _, f := range fs {
			label := strings.ToUpper(string(f.Action))
			switch f.Action {
			case engine.Deny:
				label = paint(red, label)
			case engine.Warn:
				label = paint(yellow, label)
			case engine.Audit:
				label = paint(blue, label)
			case engine.Mutate:
				label = paint(green, label)
			}
			pad := strings.Repeat(" ", 6-len(f.Action))
			fmt.Fprintf(&b, "  %s%s %s: %s [rule: %s]\n", label, pad, f.Field, f.Message, f.Rule)
			if f.Hint != "" {
				fmt.Fprintf(&b, "         hint: %s\n", f.Hint)
			}
		}
		b.WriteString("\n")
	}
	sm := r.Summary
	fmt.Fprintf(&b, "%d objects checked: deny %d, warn %d, audit %d, mutate %d",
		sm.Objects, sm.Deny, sm.Warn, sm.Audit, sm.Mutate)
	if sm.Unchecked > 0 {
		kinds := make([]string, 0, len(sm.UncheckedKinds))
		for k, n := range sm.UncheckedKinds {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(kinds)
		fmt.Fprintf(&b, "; not checked, other kinds: %s", strings.Join(kinds, ", "))
	}
	if sm.Errors > 0 {
		fmt.Fprintf(&b, "; %s", paint(red, fmt.Sprintf("%d could not be read", sm.Errors)))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// sarifLevel maps an action to a SARIF result level.
func sarifLevel(a engine.Action) string {
	switch a {
	case engine.Deny:
		return "error"
	case engine.Warn:
		return "warning"
	default:
		return "note"
	}
}

// writeSARIF writes a SARIF 2.1.0 log: one run, one reportingDescriptor per
// rule of the catalog (with its default level under the policy), one result
// per finding with the object's file and line.
func writeSARIF(w io.Writer, r *Report) error {
	report := sarif.NewReport()
	run := sarif.NewRunWithInformationURI("stsguard", "https://github.com/stsguard/stsguard")
	run.Tool.Driver.WithVersion(version.Version)
	for _, m := range r.Catalog {
		action := r.Actions[m.ID]
		cfg := sarif.NewReportingConfiguration().WithLevel(sarifLevel(action)).WithEnabled(action != engine.Off)
		run.AddRule(m.ID).WithName(m.ID).
			WithShortDescription(sarif.NewMultiformatMessageString().WithText(m.Description)).
			WithHelpURI("https://github.com/stsguard/stsguard/blob/main/docs/rules.md").
			WithDefaultConfiguration(cfg).
			WithProperties(sarif.NewPropertyBag().Add("action", string(m.Action)))
	}
	for _, f := range r.Findings {
		text := fmt.Sprintf("%s %s: %s", where(f.Kind, f.Namespace, f.Name, "", 0), f.Field, f.Message)
		if f.Hint != "" {
			text += " (hint: " + f.Hint + ")"
		}
		res := run.CreateResultForRule(f.Rule).WithLevel(sarifLevel(f.Action)).WithMessage(sarif.NewTextMessage(text))
		props := sarif.NewPropertyBag().Add("action", string(f.Action)).Add("kind", f.Kind).Add("name", f.Name).Add("field", f.Field)
		if f.Namespace != "" {
			props.Add("namespace", f.Namespace)
		}
		if f.Patch != nil {
			props.Add("patch", f.Patch)
		}
		res.WithProperties(props)
		if f.File != "" && f.File != "-" {
			uri := filepath.ToSlash(f.File)
			run.AddDistinctArtifact(uri)
			loc := sarif.NewPhysicalLocation().WithArtifactLocation(sarif.NewSimpleArtifactLocation(uri))
			if f.Line > 0 {
				loc.WithRegion(sarif.NewRegion().WithStartLine(f.Line))
			}
			res.AddLocation(sarif.NewLocationWithPhysicalLocation(loc))
		}
	}
	report.AddRun(run)
	return report.PrettyWrite(w)
}

// writeJUnit writes one testsuite per object and one testcase per rule that
// applies to its kind (rules turned Off are left out). A testcase fails when
// the rule would deny the object (or warn, with failOn Warn); other findings
// are the testcase's system-out. Unreadable manifests are testcases with an
// error.
func writeJUnit(w io.Writer, r *Report, failOn engine.Action) error {
	suites := junit.Testsuites{Name: "stsguard audit"}
	for i := range r.Objects {
		d := &r.Objects[i]
		byRule := map[string][]Finding{}
		for _, f := range r.FindingsOf(d) {
			byRule[f.Rule] = append(byRule[f.Rule], f)
		}
		name := where(d.Kind, d.Namespace, d.Name, d.File, d.Line)
		suite := junit.Testsuite{Name: name, ID: i, File: d.File, Time: "0"}
		for _, m := range r.Catalog {
			if r.Actions[m.ID] == engine.Off || !slices.Contains(m.Kinds, kinds.Kind(d.Kind)) {
				continue
			}
			tc := junit.Testcase{Name: m.ID, Classname: name}
			var out []string
			var failed []string
			for _, f := range byRule[m.ID] {
				line := fmt.Sprintf("%s %s: %s", strings.ToUpper(string(f.Action)), f.Field, f.Message)
				if f.Hint != "" {
					line += "\nhint: " + f.Hint
				}
				if f.Action == engine.Deny || (failOn == engine.Warn && f.Action == engine.Warn) {
					failed = append(failed, line)
				} else {
					out = append(out, line)
				}
			}
			if len(failed) > 0 {
				tc.Failure = &junit.Result{Message: failed[0], Type: "stsguard." + m.ID, Data: strings.Join(failed, "\n")}
			}
			if len(out) > 0 {
				tc.SystemOut = &junit.Output{Data: strings.Join(out, "\n")}
			}
			suite.AddTestcase(tc)
		}
		suites.AddSuite(suite)
	}
	if len(r.Errors) > 0 {
		suite := junit.Testsuite{Name: "manifests", ID: len(r.Objects), Time: "0"}
		for _, e := range r.Errors {
			loc := e.File
			if e.Line > 0 {
				loc = fmt.Sprintf("%s:%d", e.File, e.Line)
			}
			suite.AddTestcase(junit.Testcase{Name: loc, Classname: "manifests", Error: &junit.Result{Message: e.Message, Type: "stsguard.input"}})
		}
		suites.AddSuite(suite)
	}
	if _, err := io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"); err != nil {
		return err
	}
	return suites.WriteXML(w)
}
