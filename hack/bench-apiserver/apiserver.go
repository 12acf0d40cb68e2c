package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stsguard/stsguard/test/harness"
)

// serveFlags are the -serve-flag values: extra flags of stsguard serve.
type serveFlags []string

func (f *serveFlags) String() string { return strings.Join(*f, " ") }

func (f *serveFlags) Set(v string) error {
	if !strings.HasPrefix(v, "--") {
		return fmt.Errorf("%q: want a flag of stsguard serve, such as --enable-http2", v)
	}
	*f = append(*f, v)
	return nil
}

// describe is how the report names them ("" when there are none).
func (f serveFlags) describe() string {
	if len(f) == 0 {
		return ""
	}
	return "; stsguard serve " + f.String()
}

// serveEnv are the -serve-env values: environment variables of stsguard
// serve.
type serveEnv []string

func (e *serveEnv) String() string { return strings.Join(*e, " ") }

func (e *serveEnv) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("%q: want KEY=VALUE, such as GOMAXPROCS=1", v)
	}
	*e = append(*e, v)
	return nil
}

// set puts them into this process's environment, which stsguard serve
// inherits.
func (e serveEnv) set() error {
	for _, v := range e {
		k, val, _ := strings.Cut(v, "=")
		if err := os.Setenv(k, val); err != nil {
			return err
		}
	}
	return nil
}

func (e serveEnv) describe() string {
	if len(e) == 0 {
		return ""
	}
	return "; stsguard's environment " + e.String()
}

// profileApiserver saves CPU profiles of kube-apiserver, each over
// c.profileSeconds of writes by c.workers clients, the three kinds in
// turn: label-only UPDATEs (a label value that changes on every write)
// with the webhooks to c.apiserverProfile, then without them (kube-system)
// to c.apiserverProfile+".without"; then CREATEs with the webhooks to
// c.apiserverProfile+".create". The UPDATEs match stsguard's webhooks,
// whose matchConditions then keep them away from stsguard: that profile
// shows what matching them costs the apiserver. The CREATEs are reviewed:
// that profile shows what calling stsguard costs the apiserver. It prints
// the writes, the apiserver's CPU per write and the reviews stsguard
// served meanwhile, for each.
func (b *bench) profileApiserver(ctx context.Context, w io.Writer) error {
	fmt.Fprintf(w, "\nCPU profiles of kube-apiserver over %d s of %d clients writing (the three kinds in turn):\n\n", b.c.profileSeconds, b.c.workers)
	fmt.Fprintln(w, "| writes | file | writes/s | apiserver CPU per write | stsguard reviews |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- |")
	for _, c := range []struct {
		with, create bool
		suffix, what string
	}{
		{true, false, "", "label-only UPDATE, with the webhooks"},
		{false, false, ".without", "label-only UPDATE, without (kube-system)"},
		{true, true, ".create", "CREATE, with the webhooks"},
	} {
		file := b.c.apiserverProfile + c.suffix
		p, err := b.profileApiserverSide(ctx, c.with, c.create, file)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %s | %.0f |\n", c.what, file, p.writes/p.wall.Seconds(), us(p.cpu/p.writes), p.reviews)
	}
	fmt.Fprintf(w, "\n  go tool pprof -top -cum %s\n  (kube-apiserver at %s)\n", b.c.apiserverProfile, assetsHint())
	return nil
}

func assetsHint() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d + "/kube-apiserver"
	}
	return "bin/k8s/kube-apiserver"
}

// profileApiserverSide runs the UPDATE (or CREATE) load on one side while
// the apiserver's CPU profile is taken, and saves it to file. The load
// stops when the profile is in, or after profileSeconds+30 s.
func (b *bench) profileApiserverSide(ctx context.Context, with, create bool, file string) (profiled, error) {
	loadCtx, stopLoad := context.WithTimeout(ctx, time.Duration(b.c.profileSeconds+30)*time.Second)
	defer stopLoad()
	var next, done, errs atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range b.c.workers {
		wg.Go(func() {
			for !stop.Load() && loadCtx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= 1_000_000 {
					return
				}
				k := kinds[i%len(kinds)]
				wctx, cancel := context.WithTimeout(loadCtx, requestTimeout)
				var err error
				if create {
					err = k.create(wctx, b.cs, ns(k, with), objName(k, "aprof", i))
				} else {
					name := objName(k, "seq", (i/len(kinds))%b.c.n)
					patch := fmt.Appendf(nil, `{"metadata":{"labels":{"bench.stsguard.io/touched":"u%d"}}}`, i)
					err = k.label(wctx, b.cs, ns(k, with), name, patch)
				}
				cancel()
				if err != nil {
					errs.Add(1)
					continue
				}
				done.Add(1)
			}
		})
	}
	var p profiled
	err := func() error {
		select {
		case <-loadCtx.Done():
			return loadCtx.Err()
		case <-time.After(2 * time.Second):
		}
		before, err := b.scrapeStsguard(loadCtx)
		if err != nil {
			return err
		}
		cpu0, err := harness.ProcCPUSeconds(b.apiserverPid)
		if err != nil {
			return err
		}
		writes0, start := done.Load(), time.Now()
		pctx, cancel := context.WithTimeout(loadCtx, time.Duration(b.c.profileSeconds+20)*time.Second)
		defer cancel()
		raw, err := b.cs.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").
			Param("seconds", strconv.Itoa(b.c.profileSeconds)).DoRaw(pctx)
		if err != nil {
			return fmt.Errorf("apiserver CPU profile: %w", err)
		}
		p.wall = time.Since(start)
		p.writes = float64(done.Load() - writes0)
		cpu1, err := harness.ProcCPUSeconds(b.apiserverPid)
		if err != nil {
			return err
		}
		p.cpu = cpu1 - cpu0
		after, err := b.scrapeStsguard(loadCtx)
		if err != nil {
			return err
		}
		p.reviews = after.reviews - before.reviews
		return os.WriteFile(file, raw, 0o644)
	}()
	stop.Store(true)
	wg.Wait()
	if err != nil {
		return profiled{}, err
	}
	if n := errs.Load(); n > 0 {
		return profiled{}, fmt.Errorf("apiserver profile load: %d writes failed", n)
	}
	return p, nil
}
