package executor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/autogate/autogate/internal/filelock"
)

// pipTailLines is how many of pip's last output lines a build error quotes.
const pipTailLines = 20

// pythonInfo identifies the interpreter venvs are built from.
type pythonInfo struct {
	exe     string // sys.executable: the real interpreter, not a shim
	version string // sys.version
}

// python finds Config.Python in PathEnv and asks it who it is, once.
func (e *Executor) python(ctx context.Context) (pythonInfo, error) {
	e.pyMu.Lock()
	defer e.pyMu.Unlock()
	if e.py != nil {
		return *e.py, nil
	}
	notFound := fmt.Errorf("%w: %s not found: install python3 and python3-venv", ErrSetup, e.cfg.Python)
	path, err := lookPath(e.cfg.Python, e.cfg.PathEnv)
	if err != nil {
		return pythonInfo{}, notFound
	}
	var out, errOut tailBuffer
	p, err := e.runProcess(ctx, processSpec{
		argv:   []string{path, "-c", "import sys; print(sys.executable); print(sys.version.replace('\\n', ' '))"},
		dir:    e.cfg.CacheDir,
		env:    e.setupEnv(),
		stdout: &out, stderr: &errOut,
	})
	if err != nil || p.stopped || p.exitCode != 0 {
		if ctx.Err() != nil {
			return pythonInfo{}, ctx.Err()
		}
		return pythonInfo{}, fmt.Errorf("%w: %s does not run (%s): %s", ErrSetup, path, p.describe(), errOut.lastLines(5))
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !filepath.IsAbs(lines[0]) {
		return pythonInfo{}, fmt.Errorf("%w: %s: unexpected answer %q to sys.executable/sys.version", ErrSetup, path, out.String())
	}
	e.py = &pythonInfo{exe: lines[0], version: lines[1]}
	return *e.py, nil
}

// setupEnv is the environment of interpreter probes, venv builds and pip.
func (e *Executor) setupEnv() []string {
	return []string{
		"PATH=" + e.cfg.PathEnv,
		"HOME=" + filepath.Join(e.cfg.CacheDir, "home"),
		"LANG=C.UTF-8",
		"PIP_CONFIG_FILE=/dev/null",
		"PIP_DISABLE_PIP_VERSION_CHECK=1",
		"PIP_NO_INPUT=1",
		"PYTHONNOUSERSITE=1",
	}
}

// venv returns the directory of a virtualenv with requirements installed,
// building it on first use. Builds are keyed by the hash of the
// requirements bytes, the interpreter and the pip settings; one build runs
// per key (in-process mutex plus flock across processes). A venv is built
// in its final directory venvs/<hash>.<random> (venvs are not relocatable:
// scripts pip installs carry absolute paths) and published by atomically
// renaming a symlink venvs/<hash> onto it.
func (e *Executor) venv(ctx context.Context, log *slog.Logger, py pythonInfo, requirements, cwd string) (string, error) {
	reqs, err := os.ReadFile(requirements)
	if err != nil {
		return "", fmt.Errorf("%w: requirements: %w", ErrSetup, err)
	}
	pipCfg, err := json.Marshal(e.cfg.Pip)
	if err != nil {
		return "", fmt.Errorf("%w: pip config: %w", ErrSetup, err)
	}
	h := sha256.New()
	for _, part := range [][]byte{reqs, []byte(py.exe), []byte(py.version), pipCfg} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	key := hex.EncodeToString(h.Sum(nil))
	venvs := filepath.Join(e.cfg.CacheDir, "venvs")
	link := filepath.Join(venvs, key)

	if dir, ok := readyVenv(link); ok {
		return dir, nil
	}
	for _, d := range []string{venvs, filepath.Join(e.cfg.CacheDir, "home")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", fmt.Errorf("%w: venv cache: %w", ErrSetup, err)
		}
	}
	unlockMem, err := e.venvLocks.Lock(ctx, key)
	if err != nil {
		return "", err
	}
	defer unlockMem()
	unlockFile, err := filelock.File(ctx, link+".lock")
	if err != nil {
		return "", fmt.Errorf("%w: venv lock: %w", ErrSetup, err)
	}
	defer unlockFile()
	if dir, ok := readyVenv(link); ok {
		return dir, nil // another run built it while this one waited
	}

	// Under the lock, any other directory of this key is the remains of a
	// build that crashed before publishing.
	if stale, err := filepath.Glob(filepath.Join(venvs, key+".*")); err == nil {
		for _, d := range stale {
			if d != link+".lock" {
				_ = os.RemoveAll(d) // litter only; a failure changes nothing below
			}
		}
	}
	start := time.Now()
	dir, err := os.MkdirTemp(venvs, key+".")
	if err != nil {
		return "", fmt.Errorf("%w: venv: %w", ErrSetup, err)
	}
	if err := e.buildVenv(ctx, py, dir, requirements, cwd); err != nil {
		_ = os.RemoveAll(dir) // a half-built venv is never published
		return "", err
	}
	tmpLink := filepath.Join(venvs, ".link-"+filepath.Base(dir))
	if err := os.Symlink(filepath.Base(dir), tmpLink); err != nil {
		return "", fmt.Errorf("%w: venv: %w", ErrSetup, err)
	}
	if err := os.Rename(tmpLink, link); err != nil {
		_ = os.Remove(tmpLink) // litter only
		return "", fmt.Errorf("%w: venv: %w", ErrSetup, err)
	}
	log.InfoContext(ctx, "python venv built", "venv", key, "duration_ms", time.Since(start).Milliseconds())
	return dir, nil
}

// readyVenv resolves a published venv symlink to its directory.
func readyVenv(link string) (string, bool) {
	target, err := os.Readlink(link)
	if err != nil {
		return "", false
	}
	dir := filepath.Join(filepath.Dir(link), target)
	return dir, isExecutable(filepath.Join(dir, "bin", "python"))
}

func (e *Executor) buildVenv(ctx context.Context, py pythonInfo, dir, requirements, cwd string) error {
	run := func(what, fix string, argv ...string) error {
		var out tailBuffer
		p, err := e.runProcess(ctx, processSpec{argv: argv, dir: cwd, env: e.setupEnv(), stdout: &out, stderr: &out})
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			return fmt.Errorf("%w: %s: %w", ErrSetup, what, err)
		case p.exitCode != 0:
			return fmt.Errorf("%w: %s failed (%s)%s:\n%s", ErrSetup, what, p.describe(), fix, e.scrubPip(out.lastLines(pipTailLines)))
		}
		return nil
	}
	if err := run(py.exe+" -m venv", "; install python3-venv", py.exe, "-m", "venv", dir); err != nil {
		return err
	}
	argv := []string{filepath.Join(dir, "bin", "python"), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
		"--cache-dir", filepath.Join(e.cfg.CacheDir, "pip-cache")}
	p := e.cfg.Pip
	if p.NoIndex {
		argv = append(argv, "--no-index")
	}
	if p.IndexURL != "" {
		argv = append(argv, "--index-url", p.IndexURL)
	}
	for _, u := range p.ExtraIndexURLs {
		argv = append(argv, "--extra-index-url", u)
	}
	for _, f := range p.FindLinks {
		argv = append(argv, "--find-links", f)
	}
	argv = append(argv, "-r", requirements)
	return run("pip install -r "+filepath.Base(requirements), "; check the requirements and the pip index settings", argv...)
}

// scrubPip removes passwords of the configured index URLs from pip output.
func (e *Executor) scrubPip(s string) string {
	urls := append([]string{e.cfg.Pip.IndexURL}, e.cfg.Pip.ExtraIndexURLs...)
	urls = append(urls, e.cfg.Pip.FindLinks...)
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.User == nil {
			continue
		}
		if pw, ok := u.User.Password(); ok && pw != "" {
			s = strings.ReplaceAll(s, pw, "****")
		}
	}
	return s
}

// tailBuffer keeps the last 16 KiB written to it.
type tailBuffer struct{ buf []byte }

const tailMax = 16 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*tailMax {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if len(t.buf) > tailMax {
		return string(t.buf[len(t.buf)-tailMax:])
	}
	return string(t.buf)
}

func (t *tailBuffer) lastLines(n int) string {
	lines := bytes.Split(bytes.TrimRight([]byte(t.String()), "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
