package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/stsguard/stsguard/test/harness"
)

// Load is the write load of every scenario: Writers clients, each writing
// every Interval (a StatefulSet with a literal password, then a Secret, in
// turn): 40 writes per second in all.
const (
	Writers  = 8
	Interval = 200 * time.Millisecond
	// Lead and Tail are how long the load runs before the scenario's action
	// and after it: writes on both sides of the fault.
	Lead = 2 * time.Second
	Tail = 3 * time.Second
)

// Result is what one scenario did to the writes made while it ran.
type Result struct {
	Scenario string
	// Writes were sent, Failed refused or failed on the way.
	Writes, Failed int
	// Unjudged are StatefulSets stored with their literal password: admitted
	// without stsguard's mutating webhook.
	Unjudged int
	// KeptLiteral are StatefulSets stored with their literal password that
	// stsguard judged: it could not write the Secret to move the password
	// into, admitted them as they were and said so in a warning
	// (password-secret-ref fails open that way).
	KeptLiteral int
	// FailOpen and CallErrors are the apiserver's counts of calls to
	// stsguard's webhooks that failed: ignored (failurePolicy Ignore; the
	// write admitted unjudged) or refused (Fail).
	FailOpen, CallErrors float64
	// Drains are how long each stsguard process took to exit after SIGTERM.
	Drains []time.Duration
	// Errors are the first errors of failed writes, KeptWarnings the first
	// of stsguard's warnings that kept a literal password.
	Errors, KeptWarnings []string
}

// Measure starts the load in a namespace of its own, runs action after
// Lead, lets the load run Tail longer, stops it, and counts.
func (e *Env) Measure(ctx context.Context, scenario string, action func(context.Context) error) (Result, error) {
	before, err := e.webhookCounts()
	if err != nil {
		return Result{}, err
	}
	terms := len(e.Node.Terminations())
	e.logMark = 0
	if fi, err := os.Stat(e.apiserverLog()); err == nil {
		e.logMark = fi.Size()
	}
	ns := "load-" + rand.String(6)
	load, err := harness.StartLoad(ctx, e.Cluster.Config, ns, Writers, Interval)
	if err != nil {
		return Result{}, err
	}
	e.logf("%s: load started in namespace %s", scenario, ns)
	// Lead and Tail are lengths of the load, not waits for a condition.
	time.Sleep(Lead)
	actionErr := action(ctx)
	time.Sleep(Tail)
	lr := load.Stop()
	// A failed action (an apiserver that did not come back) is the error
	// to report, with whatever keeps the counts from being read.
	after, err := e.webhookCounts()
	if err != nil {
		return Result{}, errors.Join(actionErr, err)
	}
	literal, err := harness.LiteralPasswords(ctx, e.Cluster.Config, ns)
	if err != nil {
		return Result{}, errors.Join(actionErr, err)
	}
	d := after.Sub(before)
	r := Result{Scenario: scenario, Writes: lr.Writes, Failed: lr.Failed,
		FailOpen: d.FailOpen, CallErrors: d.CallErrors, Errors: lr.Errors, KeptWarnings: lr.KeptWarnings}
	for _, name := range literal {
		if slices.Contains(lr.KeptLiteral, name) {
			r.KeptLiteral++
		} else {
			r.Unjudged++
		}
	}
	for _, t := range e.Node.Terminations()[terms:] {
		r.Drains = append(r.Drains, t.Drain)
	}
	e.logf("%s: %s", scenario, r)
	if actionErr != nil {
		return r, fmt.Errorf("%s: %w", scenario, actionErr)
	}
	return r, nil
}

func (r Result) String() string {
	drains := make([]string, len(r.Drains))
	for i, d := range r.Drains {
		drains[i] = fmt.Sprintf("%.1f", d.Seconds())
	}
	s := fmt.Sprintf("%d writes, %d failed, %d unjudged (literal passwords stored), %d literal passwords kept with a warning (Secret not written), apiserver: %.0f failed open, %.0f refused for a failed call; drains [%s] s",
		r.Writes, r.Failed, r.Unjudged, r.KeptLiteral, r.FailOpen, r.CallErrors, strings.Join(drains, " "))
	if len(r.Errors) > 0 {
		s += "; first errors: " + strings.Join(r.Errors, " | ")
	}
	if len(r.KeptWarnings) > 0 {
		s += "; first warnings that kept a literal: " + strings.Join(r.KeptWarnings, " | ")
	}
	return s
}

// PrintTable writes results as a Markdown table: scenario, writes, failed,
// unjudged (the larger of the literal passwords stored without stsguard's
// warning and the apiserver's fail-open count), literal passwords kept
// with stsguard's warning, the apiserver's refusals for failed calls, drain
// seconds.
func PrintTable(w io.Writer, results []Result) error {
	var errs []error
	p := func(format string, args ...any) {
		_, err := fmt.Fprintf(w, format, args...)
		errs = append(errs, err)
	}
	p("| scenario | writes | failed | unjudged | kept literal (warned) | refused (Fail) | drain s (per replica) |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range results {
		drains := make([]string, len(r.Drains))
		for i, d := range r.Drains {
			drains[i] = fmt.Sprintf("%.1f", d.Seconds())
		}
		p("| %s | %d | %d | %d | %d | %.0f | %s |\n", r.Scenario, r.Writes, r.Failed, max(r.Unjudged, int(r.FailOpen)), r.KeptLiteral, r.CallErrors, strings.Join(drains, ", "))
	}
	return errors.Join(errs...)
}
