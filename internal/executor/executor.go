package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/filelock"
	"github.com/autogate/autogate/internal/resource"
)

// ErrSetup is wrapped by every error Run returns: the run could not be set
// up (a missing tool or interpreter, a bad path, a failed venv build). The
// message says what to install or fix.
var ErrSetup = errors.New("run setup failed")

// Defaults for Config's zero values.
const (
	DefaultPython      = "python3"
	DefaultOutputLimit = 64 << 10
	DefaultKillGrace   = 5 * time.Second
)

// PipConfig is what pip is told about package indexes, on its command line;
// the host's pip configuration files and PIP_* variables are ignored.
type PipConfig struct {
	IndexURL       string   `json:"indexURL,omitempty"`
	ExtraIndexURLs []string `json:"extraIndexURLs,omitempty"`
	FindLinks      []string `json:"findLinks,omitempty"`
	NoIndex        bool     `json:"noIndex,omitempty"`
}

// Config configures an Executor.
type Config struct {
	// WorkRoot is the parent of the per-run directories, each removed after
	// its run. Required; created (0700) if missing.
	WorkRoot string
	// DiskWorkRoot, when set, is where opentofu-plan runs get their
	// directories instead: `tofu init` downloads providers (hundreds of MB)
	// into the run directory, which must not fill a memory WorkRoot.
	// Created (0700) if missing.
	DiskWorkRoot string
	// CacheDir holds python virtualenvs cached by content hash. Required;
	// created (0700) if missing.
	CacheDir string
	// Python is the interpreter venvs are built with and requirement-less
	// scripts run with, looked up in PathEnv; default "python3".
	Python string
	// Pip is passed explicitly to every pip install.
	Pip PipConfig
	// OutputLimit is how many bytes of each stream (stdout, stderr) a Result
	// keeps; default 64 KiB.
	OutputLimit int
	// KillGrace is the time between SIGTERM and SIGKILL for the service's
	// process group; default 5s.
	KillGrace time.Duration
	// PathEnv is the PATH services get, and where tools (python3,
	// ansible-playbook, tofu) are looked up; default the host's PATH.
	PathEnv string
	// Logger receives run lifecycle logs; nil discards them.
	Logger *slog.Logger
	// ShimPath is the binary services are started under as their
	// supervising shim (see RunShim): normally SelfShim, autogate-shim or a
	// binary whose main begins with RunShim. It runs once per Executor, as
	// the long-lived reaper that starts every service (a request too big
	// for it gets a shim process of its own). Empty: no shim; the service's
	// leader still dies with this process, its grandchildren may not.
	// Linux only.
	ShimPath string
}

// Executor runs services. It is safe for concurrent use.
type Executor struct {
	cfg    Config
	logger *slog.Logger

	venvLocks filelock.Keyed

	pyMu sync.Mutex
	py   *pythonInfo // probed once per Executor

	reap reaperState // with ShimPath: the services' long-lived shim
}

// New checks cfg, fills in defaults and creates WorkRoot, DiskWorkRoot and
// CacheDir.
func New(cfg Config) (*Executor, error) {
	if cfg.WorkRoot == "" || cfg.CacheDir == "" {
		return nil, errors.New("executor: WorkRoot and CacheDir are required")
	}
	var err error
	if cfg.WorkRoot, err = filepath.Abs(cfg.WorkRoot); err != nil {
		return nil, fmt.Errorf("executor: WorkRoot: %w", err)
	}
	if cfg.CacheDir, err = filepath.Abs(cfg.CacheDir); err != nil {
		return nil, fmt.Errorf("executor: CacheDir: %w", err)
	}
	dirs := []string{cfg.WorkRoot, cfg.CacheDir}
	if cfg.DiskWorkRoot != "" {
		if cfg.DiskWorkRoot, err = filepath.Abs(cfg.DiskWorkRoot); err != nil {
			return nil, fmt.Errorf("executor: DiskWorkRoot: %w", err)
		}
		dirs = append(dirs, cfg.DiskWorkRoot)
	}
	if cfg.Python == "" {
		cfg.Python = DefaultPython
	}
	switch {
	case cfg.OutputLimit == 0:
		cfg.OutputLimit = DefaultOutputLimit
	case cfg.OutputLimit < 0:
		return nil, fmt.Errorf("executor: OutputLimit %d is negative", cfg.OutputLimit)
	}
	switch {
	case cfg.KillGrace == 0:
		cfg.KillGrace = DefaultKillGrace
	case cfg.KillGrace < 0:
		return nil, fmt.Errorf("executor: KillGrace %v is negative", cfg.KillGrace)
	}
	if cfg.ShimPath != "" {
		if runtime.GOOS != "linux" {
			return nil, fmt.Errorf("executor: ShimPath needs Linux, not %s", runtime.GOOS)
		}
		if !filepath.IsAbs(cfg.ShimPath) {
			return nil, fmt.Errorf("executor: ShimPath %q is not absolute", cfg.ShimPath)
		}
	}
	if cfg.PathEnv == "" {
		cfg.PathEnv = os.Getenv("PATH")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("executor: %w", err)
		}
	}
	return &Executor{cfg: cfg, logger: cfg.Logger}, nil
}

// Job is one run of a service.
type Job struct {
	ExecutionID string
	// Service is what to run: a snapshot, validated by the caller.
	Service resource.Service
	// Inputs are the validated inputs, unredacted.
	Inputs map[string]any
	// SourceDir is the read-only checked-out repository root (from gitrepo).
	SourceDir string
	// Secrets maps secret name to plaintext, for Service.Secrets bindings.
	// Every non-empty value is redacted from the output.
	Secrets map[string][]byte
	// Sensitive are extra strings to redact from output; those shorter
	// than resource.MinRedactBytes are ignored.
	Sensitive []string
	// SensitiveInputs names the inputs marked writeOnly. They never go on
	// the command line, which any local user can read in /proc/PID/cmdline:
	// the service reads them from AUTOGATE_INPUTS_FILE (0600). Their values
	// are redacted from the output like Sensitive.
	SensitiveInputs []string
	// Apply makes an opentofu-plan service run `tofu apply` after the plan.
	Apply bool
	// Live, if set, shows the output while the run goes on (see Live).
	Live *Live
}

// Result is how a run ended.
type Result struct {
	// Status is Succeeded, Failed, TimedOut or Canceled.
	Status execution.Status
	// ExitCode is the entry process's exit code (of the last step run, for
	// opentofu-plan); -1 when killed by a signal or never started.
	ExitCode       int
	Stdout, Stderr execution.Output
	// Reason explains a non-success: "exit code 3", "timed out after 2s",
	// "canceled".
	Reason string
}

// Run runs job to completion. The timeout is job.Service.Timeout();
// cancellation of ctx cancels the run (Status Canceled). It returns an error
// only when the run could not be set up (missing tool or interpreter, bad
// paths, venv build failure); such errors wrap ErrSetup and say what to
// install or fix, and the Result then has Status Failed and ExitCode -1.
func (e *Executor) Run(ctx context.Context, job Job) (Result, error) {
	log := e.logger.With("execution_id", job.ExecutionID, "service", job.Service.Name, "service_type", string(job.Service.Type))
	start := time.Now()

	rd, err := e.prepare(ctx, log, job)
	if err != nil {
		if ctx.Err() != nil {
			return canceledInSetup(ctx)
		}
		return setupFailed(err)
	}
	defer rd.remove(ctx, log)

	st, err := e.plan(ctx, log, job, rd)
	if err != nil {
		if ctx.Err() != nil {
			return canceledInSetup(ctx)
		}
		return setupFailed(err)
	}

	redact := redactPatterns(job.redactions())
	stdout := newCapture(e.cfg.OutputLimit, redact)
	stderr := newCapture(e.cfg.OutputLimit, redact)
	job.Live.bind(stdout, stderr)
	timeout := job.Service.Timeout()
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	log.InfoContext(ctx, "service run started", "run_dir", rd.dir)
	res := Result{Status: execution.Succeeded, ExitCode: -1}
	for _, step := range st.steps {
		if runCtx.Err() != nil {
			res.Status, res.Reason = stoppedStatus(ctx, timeout)
			break
		}
		p, err := e.runProcess(runCtx, processSpec{argv: step.argv, dir: rd.cwd, env: st.env, stdout: stdout, stderr: stderr})
		if err != nil {
			return setupFailed(fmt.Errorf("%w: starting %s: %w", ErrSetup, step.argv[0], err))
		}
		res.ExitCode = p.exitCode
		if p.stopped {
			res.Status, res.Reason = stoppedStatus(ctx, timeout)
			break
		}
		if p.exitCode != 0 {
			res.Status, res.Reason = execution.Failed, step.prefix+p.describe()
			break
		}
	}
	res.Stdout, res.Stderr = stdout.output(), stderr.output()
	job.Live.finish(res.Stdout, res.Stderr)
	log.InfoContext(ctx, "service run finished", "status", string(res.Status), "exit_code", res.ExitCode,
		"duration_ms", time.Since(start).Milliseconds(), "stdout_bytes", res.Stdout.Bytes, "stderr_bytes", res.Stderr.Bytes)
	return res, nil
}

// stoppedStatus tells a cancellation of ctx from the run's own timeout. A
// cancellation cause other than context.Canceled is added to the reason.
func stoppedStatus(ctx context.Context, timeout time.Duration) (execution.Status, string) {
	if ctx.Err() != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return execution.Canceled, "canceled: " + cause.Error()
		}
		return execution.Canceled, "canceled"
	}
	return execution.TimedOut, fmt.Sprintf("timed out after %v", timeout)
}

func canceledInSetup(ctx context.Context) (Result, error) {
	_, reason := stoppedStatus(ctx, 0)
	return Result{Status: execution.Canceled, ExitCode: -1, Reason: reason + " during setup"}, nil
}

func setupFailed(err error) (Result, error) {
	if !errors.Is(err, ErrSetup) {
		err = fmt.Errorf("%w: %w", ErrSetup, err)
	}
	return Result{Status: execution.Failed, ExitCode: -1, Reason: err.Error()}, err
}

// redactions lists the values whose forms (see redactForms) are replaced
// by execution.Redacted in output.
func (j *Job) redactions() []string {
	var r []string
	for _, v := range j.Secrets {
		r = append(r, string(v))
	}
	r = append(r, j.Sensitive...)
	for _, k := range j.SensitiveInputs {
		v, ok := j.Inputs[k]
		if !ok {
			continue
		}
		if s, ok := v.(string); ok {
			r = append(r, s)
		} else if b, err := encodeJSON(v); err == nil {
			r = append(r, string(b))
		}
	}
	return r
}
