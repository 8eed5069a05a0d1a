// Package browsertest starts a headless Chromium for browser tests and
// drives it with chromedp.
//
// The test starts Chromium itself (not chromedp's ExecAllocator, whose
// browser dies with the first context that a finished step cancels, and
// whose start-up races under load) and connects to it through the
// DevTools port the browser writes to its profile directory. One browser
// serves one test function; each subtest gets its own tab with its own
// timeout derived from the browser's context, never from a context that an
// earlier subtest cancelled. Cleanups run in order: tabs close, then the
// connection, then the process is killed.
//
// Without Chromium the test skips, saying why; with CI=true it fails.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
)

// StartTimeout bounds Chromium's start-up, DevTools port included.
const StartTimeout = 60 * time.Second

// TabTimeout bounds everything one tab (one subtest) does.
const TabTimeout = 60 * time.Second

// chromiumPath finds the browser: $AUTOGATE_CHROMIUM if set, else
// /usr/bin/chromium, else chromium on PATH.
func chromiumPath() (string, error) {
	if p := os.Getenv("AUTOGATE_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", err
		}
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium", nil
	}
	return exec.LookPath("chromium")
}

// unavailable fails the test in CI and skips it elsewhere.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("browser test: %s (CI=true: Chromium must be available; scripts/deps.sh installs it)", msg)
	}
	t.Skipf("SKIPPING browser test: %s (install Debian's chromium package)", msg)
}

// Start runs a headless Chromium for t and returns the browser's chromedp
// context; it is closed and the process killed when t ends.
func Start(t *testing.T) context.Context {
	t.Helper()
	bin, err := chromiumPath()
	if err != nil {
		unavailable(t, "no chromium: %v", err)
	}
	profile := t.TempDir()
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--ignore-certificate-errors", "--remote-debugging-port=0",
		"--window-size=1280,900", "--user-data-dir="+profile, "about:blank")
	logf, err := os.Create(filepath.Join(profile, "..", "chromium.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		unavailable(t, "start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	// Registered first, so it runs last: after the tabs and the
	// connection are closed.
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // it may have exited already
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Logf("chromium (pid %d) did not exit within 10 s of the kill", cmd.Process.Pid)
		}
	})

	ws, err := devToolsURL(profile, exited)
	if err != nil {
		raw, _ := os.ReadFile(logf.Name()) // best effort, for the message
		unavailable(t, "%v; chromium's log:\n%s", err, raw)
	}
	// The connection lives as long as the test, not as any step: no
	// t.Context (cancelled before the cleanups that must close tabs first).
	alloc, cancelAlloc := remote.NewAllocator(context.Background(), ws, remote.NoModifyURL)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := firstDo(browser, StartTimeout); err != nil {
		unavailable(t, "connect to chromium at %s: %v", ws, err)
	}
	return browser
}

// firstDo runs the first (empty) action on ctx, which connects to the
// browser or creates the tab. It gets no timeout context: a timeout on
// the first run would bind the connection or the tab to it, ending them
// when it expires. A watchdog bounds it instead.
func firstDo(ctx context.Context, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("no answer within %v", d)
	}
}

// devToolsURL polls the DevToolsActivePort file Chromium writes once it
// listens: the port on the first line, the browser's path on the second.
func devToolsURL(profile string, exited <-chan error) (string, error) {
	f := filepath.Join(profile, "DevToolsActivePort")
	deadline := time.Now().Add(StartTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if raw, err := os.ReadFile(f); err == nil {
			lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
			if len(lines) == 2 && lines[0] != "" && strings.HasPrefix(lines[1], "/devtools/browser/") {
				return "ws://127.0.0.1:" + strings.TrimSpace(lines[0]) + strings.TrimSpace(lines[1]), nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no %s within %v", f, StartTimeout)
		}
		select {
		case err := <-exited:
			return "", fmt.Errorf("chromium exited before it listened: %v", err)
		case <-tick.C:
		}
	}
}

// Tab opens a new tab of browser for t (a subtest) and returns its
// context, bounded by TabTimeout; the tab closes when t ends.
func Tab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	tab, cancelTab := chromedp.NewContext(browser)
	t.Cleanup(cancelTab)
	if err := firstDo(tab, TabTimeout); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, TabTimeout)
	t.Cleanup(cancel)
	return ctx
}

// Screenshot saves the tab's viewport as dir/name.png and logs where.
func Screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot: %s", p)
}
