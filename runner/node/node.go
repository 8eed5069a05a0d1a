package node

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/executor"
	"github.com/autogate/autogate/internal/gitrepo"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/runner"
)

// Config is everything a runner node is built from.
type Config struct {
	// Node is the runner's ID, recorded on every execution it claims.
	Node    string
	Cluster string
	// Dir holds the venv cache (venvs), the repository cache (repos) and
	// the fallback run directory root (work); they are created 0700.
	Dir string
	// WorkDir is where run directories are made; empty:
	// executor.DefaultWorkRoot, with Dir/work as its fallback, and Dir/work
	// for opentofu-plan runs (their providers are large).
	WorkDir string
	// Retention is how long recorded executions are kept; required (the
	// catalog's 30-day default would otherwise hide a missing setting).
	Retention time.Duration
	// RepoRefresh is how long a branch's resolved commit is reused before
	// fetching again; 0 fetches on every run.
	RepoRefresh time.Duration
	// OutputLimit is the bytes of stdout and of stderr kept per execution.
	OutputLimit int
	Pip         executor.PipConfig
	// ShimPath is the executor's supervising shim (executor.SelfShim for a
	// binary whose main begins with executor.RunShim); "" runs services
	// without one, so they may outlive this process.
	ShimPath string
	// Concurrency, Heartbeat and CancelPoll are the runner core's (zero
	// takes its defaults: 4, execution.DefaultHeartbeat (5 s), 1 s).
	Concurrency int
	Heartbeat   time.Duration
	CancelPoll  time.Duration

	// Store is the raw store the runner records through.
	Store store.Store
	// Claims, if set, is the store claims are written through (see
	// runner.Config.Claims): the gateway's term-fenced view in local
	// execution. nil is Store.
	Claims  store.Store
	Keyring *secret.Keyring
	Source  runner.Source
	Clock   clock.Clock
	Logger  *slog.Logger
	// Metrics and OnDone are optional (see runner.Config).
	Metrics runner.Meter
	OnDone  func(*execution.Execution)
	// Protector and ProtectFor are the task scale-in protection (see
	// runner.Config); nil outside ECS and for in-process and Lambda runners.
	Protector  runner.Protector
	ProtectFor time.Duration
}

// Node is a built runner node; Catalog and Repos are exposed for callers
// that also read through them (a standby gateway warms its cache).
type Node struct {
	Core    *runner.Core
	Catalog *catalog.Catalog
	Repos   *gitrepo.Cache
}

// ErrConfig marks a Config New cannot build from.
var ErrConfig = errors.New("runner node configuration")

// New validates cfg, creates its directories and builds the node.
func New(cfg Config) (*Node, error) {
	switch {
	case cfg.Dir == "":
		return nil, fmt.Errorf("%w: directory is required", ErrConfig)
	case cfg.Retention <= 0:
		return nil, fmt.Errorf("%w: retention %v must be positive", ErrConfig, cfg.Retention)
	case cfg.RepoRefresh < 0:
		return nil, fmt.Errorf("%w: repository refresh %v must not be negative", ErrConfig, cfg.RepoRefresh)
	case cfg.Store == nil || cfg.Keyring == nil:
		return nil, fmt.Errorf("%w: store and keyring are required", ErrConfig)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dirs := map[string]string{}
	for _, d := range []string{"repos", "venvs", "work"} {
		dirs[d] = filepath.Join(cfg.Dir, d)
		if err := os.MkdirAll(dirs[d], 0o700); err != nil {
			return nil, fmt.Errorf("runner directory: %w", err)
		}
	}
	work, why := cfg.WorkDir, "configured"
	disk := "" // a configured run directory is used for every type
	if work == "" {
		work, why = executor.DefaultWorkRoot(dirs["work"])
		disk = dirs["work"]
	}
	cfg.Logger.Info("run directories", "run_dir", work, "because", why, "opentofu_run_dir", cmp.Or(disk, work))
	exe, err := executor.New(executor.Config{
		WorkRoot: work, DiskWorkRoot: disk, CacheDir: dirs["venvs"], OutputLimit: cfg.OutputLimit, Logger: cfg.Logger, Pip: cfg.Pip, ShimPath: cfg.ShimPath,
	})
	if err != nil {
		return nil, err
	}
	repos := gitrepo.New(dirs["repos"], cfg.Logger)
	repos.Refresh = cfg.RepoRefresh
	cat := &catalog.Catalog{Store: cfg.Store, Cluster: cfg.Cluster, Keyring: cfg.Keyring, Clock: cfg.Clock, Retention: cfg.Retention}
	claims := cat
	if cfg.Claims != nil {
		claims = &catalog.Catalog{Store: cfg.Claims, Cluster: cfg.Cluster, Keyring: cfg.Keyring, Clock: cfg.Clock, Retention: cfg.Retention}
	}
	rc := runner.Config{
		Node: cfg.Node, Catalog: cat, Claims: claims, Source: cfg.Source, Executor: exe, Repos: repos,
		Clock: cfg.Clock, Logger: cfg.Logger, Concurrency: cfg.Concurrency, Heartbeat: cfg.Heartbeat,
		CancelPoll: cfg.CancelPoll, OnDone: cfg.OnDone, Metrics: cfg.Metrics,
		Protector: cfg.Protector, ProtectFor: cfg.ProtectFor,
	}
	core, err := runner.New(rc)
	if err != nil {
		return nil, err
	}
	return &Node{Core: core, Catalog: cat, Repos: repos}, nil
}
