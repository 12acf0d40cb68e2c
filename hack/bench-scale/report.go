package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// Targets.
const (
	targetPerSecret = 1024             // bytes of RSS per cached Secret
	targetReady     = 10 * time.Second // to ready at the largest size
)

// report prints the markdown tables and the chart.
func report(w io.Writer, c config, perSecret []secretCost, rows []row, loadBefore, loadAfter string, took time.Duration) {
	fmt.Fprintf(w, "stsguard bench-scale: %d namespaces, a third each StatefulSets, headless Services, Secrets of %d bytes; %d StatefulSet CREATEs per size; load average %s before, %s after; %s in all.\n\n",
		c.namespaces, c.secretBytes, c.writes, loadBefore, loadAfter, took.Round(time.Second))
	if len(perSecret) > 0 {
		fmt.Fprintf(w, "What one cached Secret of %d bytes costs (%d Secrets added while a server runs, then a server started after them; live heap after a forced GC):\n\n", c.secretBytes, perSecret[0].secrets)
		fmt.Fprintln(w, "| binary | live heap per Secret (running) | RSS per Secret (running) | live heap per Secret (restarted) | RSS per Secret (restarted) | target: RSS at most 1 KiB |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---|")
		for _, p := range perSecret {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | running %s; restarted %s |\n", filepath.Base(p.bin),
				kib(p.heapPerSecret(1)), kib(p.rssPerSecret(1)), kib(p.heapPerSecret(2)), kib(p.rssPerSecret(2)),
				atMost(p.rssPerSecret(1), targetPerSecret, kib), atMost(p.rssPerSecret(2), targetPerSecret, kib))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "| N objects | ready (CPU to ready) | RSS ready | RSS after writes (peak) | live heap | CREATE p50 | CREATE p99 | CPU per review | audit --cluster wall | audit peak RSS (largest live heap) |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %d | %.2f s (%.2f s) | %s | %s (%s) | %s | %s | %s | %.0f µs | %.1f s | %s (%s) |\n",
			r.n, r.ready.Seconds(), r.cpuReady, mib(float64(r.rssReady)), mib(float64(r.rssAfter)), mib(float64(r.rssPeak)), mib(r.liveHeap),
			ms(r.p50), ms(r.p99), r.cpuPerReview*1e6, r.auditWall.Seconds(), mib(float64(r.auditPeak)), mib(r.auditLive))
	}
	fmt.Fprintln(w)
	if len(rows) > 0 {
		last := rows[len(rows)-1]
		fmt.Fprintf(w, "Ready at N=%d: %.2f s, target at most %s: %s.\n", last.n, last.ready.Seconds(), targetReady, atMost(last.ready.Seconds(), targetReady.Seconds(), func(v float64) string { return fmt.Sprintf("%.1f s", v) }))
		first := rows[0]
		if first.cpuPerReview > 0 {
			fmt.Fprintf(w, "CPU per review at N=%d is %.2fx that at N=%d (flat is 1x).\n", last.n, last.cpuPerReview/first.cpuPerReview, first.n)
		}
		if len(rows) > 1 && last.n > first.n {
			fmt.Fprintf(w, "Growth from N=%d to N=%d, per object: live heap %s, RSS after writes %s, audit peak RSS %s.\n", first.n, last.n,
				kib((last.liveHeap-first.liveHeap)/float64(last.n-first.n)), kib(float64(last.rssAfter-first.rssAfter)/float64(last.n-first.n)),
				kib(float64(last.auditPeak-first.auditPeak)/float64(last.n-first.n)))
		}
		for _, r := range rows {
			fmt.Fprintf(w, "audit --cluster at N=%d judged %d objects, %d denied.\n", r.n, r.auditObjects, r.denied)
		}
		fmt.Fprintln(w)
		chart(w, rows)
	}
}

// chart draws each cost against N as bars scaled to the largest value.
func chart(w io.Writer, rows []row) {
	series := []struct {
		name  string
		value func(row) float64
		unit  func(float64) string
	}{
		{"RSS of stsguard serve after writes", func(r row) float64 { return float64(r.rssAfter) }, mib},
		{"live heap of stsguard serve", func(r row) float64 { return r.liveHeap }, mib},
		{"time to ready", func(r row) float64 { return r.ready.Seconds() }, func(v float64) string { return fmt.Sprintf("%.2f s", v) }},
		{"CPU per review", func(r row) float64 { return r.cpuPerReview }, func(v float64) string { return fmt.Sprintf("%.0f µs", v*1e6) }},
		{"StatefulSet CREATE p99", func(r row) float64 { return r.p99.Seconds() }, func(v float64) string { return fmt.Sprintf("%.1f ms", v*1e3) }},
		{"audit --cluster peak RSS", func(r row) float64 { return float64(r.auditPeak) }, mib},
	}
	const width = 50
	fmt.Fprintln(w, "```")
	for _, s := range series {
		var top float64
		for _, r := range rows {
			top = max(top, s.value(r))
		}
		fmt.Fprintln(w, s.name)
		for _, r := range rows {
			n := 0
			if top > 0 {
				n = int(s.value(r)/top*width + 0.5)
			}
			fmt.Fprintf(w, "  N=%-7d %s %s\n", r.n, strings.Repeat("#", n)+strings.Repeat(" ", width-n), s.unit(s.value(r)))
		}
	}
	fmt.Fprintln(w, "```")
}

func atMost(v, limit float64, unit func(float64) string) string {
	if v <= limit {
		return "met (at most " + unit(limit) + ")"
	}
	return fmt.Sprintf("missed by %s (%.1fx)", unit(v-limit), v/limit)
}

func kib(b float64) string { return fmt.Sprintf("%.2f KiB", b/1024) }
func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
