package policy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stsguard/stsguard/engine"
	"github.com/stsguard/stsguard/internal/promutil"
	"github.com/stsguard/stsguard/rules"
)

// DefaultPollInterval is how often Holder re-reads the policy file besides
// reacting to file system events (which some volume types do not deliver).
const DefaultPollInterval = 10 * time.Second

// Holder keeps the engine of the current policy. Engine is safe for
// concurrent use; Start watches the file and swaps in a new engine when it
// changes to a valid policy. An invalid new file keeps the previous policy,
// is logged and counted in stsguard_policy_reload_errors_total.
type Holder struct {
	path         string
	pollInterval time.Duration
	log          logr.Logger

	engine  atomic.Pointer[engine.Engine]
	mu      sync.Mutex        // serialises reloads
	loaded  [sha256.Size]byte // content in force
	failed  [sha256.Size]byte // last content that failed, reported once
	errors  prometheus.Counter
	reloads prometheus.Counter
}

// NewHolder loads the policy file at path (an error here is a start-up
// error) and registers the reload metrics with reg:
// stsguard_policy_reload_errors_total and stsguard_policy_reloads_total.
// With path "" it holds an engine built from base and watches nothing.
// pollInterval 0 means DefaultPollInterval.
func NewHolder(path string, base engine.Config, pollInterval time.Duration, reg prometheus.Registerer, log logr.Logger) (*Holder, error) {
	h := &Holder{path: path, pollInterval: pollInterval, log: log,
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stsguard_policy_reload_errors_total",
			Help: "Reloads of the policy file that failed (the previous policy stays in force).",
		}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stsguard_policy_reloads_total",
			Help: "Reloads of the policy file that put a changed policy in force.",
		}),
	}
	if h.pollInterval <= 0 {
		h.pollInterval = DefaultPollInterval
	}
	var err error
	for _, c := range []*prometheus.Counter{&h.errors, &h.reloads} {
		if *c, err = promutil.Register(reg, *c); err != nil {
			return nil, err
		}
	}
	cfg := base
	var sum [sha256.Size]byte
	if path != "" {
		var data []byte
		data, err = os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading policy: %w", err)
		}
		if cfg, err = Parse(data); err != nil {
			return nil, fmt.Errorf("policy %s: %w", path, err)
		}
		sum = sha256.Sum256(data)
	}
	e, err := rules.New(cfg)
	if err != nil {
		return nil, err
	}
	h.engine.Store(e)
	h.loaded = sum
	return h, nil
}

// Engine returns the engine of the policy in force.
func (h *Holder) Engine() *engine.Engine { return h.engine.Load() }

// Reload re-reads the file and puts it in force when it changed and is
// valid. It returns the reason an invalid file was not put in force; the
// previous policy then stays. The same invalid content is logged and
// counted once, not at every poll.
func (h *Holder) Reload() error {
	if h.path == "" {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	data, err := os.ReadFile(h.path)
	var sum [sha256.Size]byte
	if err == nil {
		sum = sha256.Sum256(data)
		if sum == h.loaded || sum == h.failed {
			return nil
		}
		var cfg engine.Config
		if cfg, err = Parse(data); err == nil {
			var e *engine.Engine
			if e, err = rules.New(cfg); err == nil {
				h.engine.Store(e)
				h.loaded = sum
				h.reloads.Inc()
				h.log.Info("policy reloaded", "file", h.path, "sha256", fmt.Sprintf("%x", sum[:8]))
				return nil
			}
		}
	}
	h.failed = sum
	h.errors.Inc()
	err = fmt.Errorf("policy %s: %w", h.path, err)
	h.log.Error(err, "invalid policy file; the previous policy stays in force")
	return err
}

// Start watches the policy file until ctx is done: on every file system
// event in its directory (a mounted ConfigMap is swapped through a symlink)
// and every poll interval it calls Reload. It implements manager.Runnable.
func (h *Holder) Start(ctx context.Context) error {
	if h.path == "" {
		<-ctx.Done()
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching policy: %w", err)
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(h.path)); err != nil {
		h.log.Error(err, "cannot watch the policy directory; polling only", "every", h.pollInterval)
	}
	tick := time.NewTicker(h.pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case _, ok := <-w.Events:
			if !ok {
				return errors.New("policy watcher closed")
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("policy watcher closed")
			}
			h.log.Error(err, "watching the policy directory")
			continue
		}
		_ = h.Reload() // logged and counted by Reload
	}
}

// NeedLeaderElection is false: every replica serves requests and needs the
// current policy.
func (h *Holder) NeedLeaderElection() bool { return false }
