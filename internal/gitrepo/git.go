package gitrepo

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// maxStderr bounds how much of git's stderr is kept for an error.
	maxStderr = 16 << 10
	// gitKillGrace is how long git gets between SIGTERM (on cancellation)
	// and SIGKILL.
	gitKillGrace = 5 * time.Second
	redacted     = "[REDACTED]"
)

// passEnv lists the host variables git may see: proxies and CA locations,
// which a deployment behind a proxy needs. Everything else is dropped.
var passEnv = []string{
	"http_proxy", "https_proxy", "no_proxy", "all_proxy",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
}

// git runs the git CLI for one repository source.
type git struct {
	home string
	src  source
}

// env is git's whole environment. The credential, if any, travels only here,
// as an http.extraHeader set through GIT_CONFIG_* (never argv, never disk).
func (g *git) env() []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{
		"PATH=" + path,
		"HOME=" + g.home,
		"LC_ALL=C",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_ALLOW_PROTOCOL=file:git:http:https:ssh",
		"GIT_SSH_COMMAND=ssh -o BatchMode=yes",
	}
	for _, k := range passEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	cfg := [][2]string{
		// A detached auto-gc would outlive the call and race the next one.
		{"gc.autoDetach", "false"},
		// An empty value resets the helper list: nothing may store the
		// credential.
		{"credential.helper", ""},
	}
	if h := g.authHeader(); h != "" {
		cfg = append(cfg, [2]string{"http.extraHeader", h})
	}
	env = append(env, "GIT_CONFIG_COUNT="+strconv.Itoa(len(cfg)))
	for i, kv := range cfg {
		env = append(env, "GIT_CONFIG_KEY_"+strconv.Itoa(i)+"="+kv[0], "GIT_CONFIG_VALUE_"+strconv.Itoa(i)+"="+kv[1])
	}
	return env
}

func (g *git) basicToken() string {
	if len(g.src.cred) == 0 {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(g.src.user + ":" + string(g.src.cred)))
}

func (g *git) authHeader() string {
	if t := g.basicToken(); t != "" {
		return "Authorization: Basic " + t
	}
	return ""
}

// scrub removes the credential, in every form git could echo it, from s.
func (g *git) scrub(s string) string {
	secrets := []string{g.authHeader(), g.basicToken(), string(g.src.cred)}
	if u, err := urlPassword(g.src.url); err == nil && u != "" {
		secrets = append(secrets, u)
	}
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	return s
}

// run runs git with args in dir (the process's cwd; "" for the current
// one) and returns its stdout. Errors carry git's scrubbed stderr.
func (g *git) run(ctx context.Context, dir string, args ...string) ([]byte, error) {
	var stdout bytes.Buffer
	stderr := &limitedBuffer{max: maxStderr}
	cmd := g.command(ctx, dir, args...)
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return nil, g.wrap(args[0], stderr.String(), err)
	}
	return stdout.Bytes(), nil
}

// command builds a git command that is killed (SIGTERM, then SIGKILL after
// gitKillGrace) with its process group when ctx ends.
func (g *git) command(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = g.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = gitKillGrace
	return cmd
}

func (g *git) wrap(sub, stderr string, err error) error {
	msg := strings.TrimSpace(g.scrub(stderr))
	if errors.Is(err, exec.ErrNotFound) {
		return fmt.Errorf("git not found: install git: %w", err)
	}
	if msg == "" {
		return fmt.Errorf("git %s: %w", sub, err)
	}
	return fmt.Errorf("git %s: %s (%w)", sub, msg, err)
}

func urlPassword(raw string) (string, error) {
	if strings.HasPrefix(raw, "/") {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return "", err
	}
	p, _ := u.User.Password()
	return p, nil
}

// limitedBuffer keeps the first max bytes written to it and drops the rest.
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string { return b.buf.String() }
