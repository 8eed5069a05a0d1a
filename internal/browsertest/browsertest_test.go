package browsertest

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestStart opens a page in the browser and reads it back.
func TestStart(t *testing.T) {
	b := Start(t)
	for _, name := range []string{"first", "second"} { // a tab per subtest, the browser outlives each
		t.Run(name, func(t *testing.T) {
			tab := Tab(t, b)
			if err := chromedp.Do(tab, chromedp.Navigate("data:text/html,<title>t-"+name+"</title><p id=x>hello</p>")); err != nil {
				t.Fatal(err)
			}
			title, err := chromedp.Run(tab, chromedp.Title())
			if err != nil || title != "t-"+name {
				t.Fatalf("title %q, %v", title, err)
			}
			Screenshot(t, tab, t.TempDir(), name)
		})
	}
}

// TestChild is run by TestUnavailable in a child process.
func TestChild(t *testing.T) {
	if os.Getenv("BROWSERTEST_CHILD") == "" {
		t.Skip("a helper: TestUnavailable runs it in a child process")
	}
	Start(t)
	t.Log("started")
}

// TestUnavailable: without Chromium the test skips, saying why, and with
// CI=true it fails.
func TestUnavailable(t *testing.T) {
	for _, tt := range []struct {
		ci       string
		wantFail bool
		want     string
	}{{"", false, "SKIPPING browser test"}, {"true", true, "CI=true: Chromium must be available"}} {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.v")
			cmd.Env = append(os.Environ(), "BROWSERTEST_CHILD=1", "AUTOGATE_CHROMIUM=/nonexistent/chromium", "CI="+tt.ci)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tt.wantFail || !strings.Contains(string(out), tt.want) || strings.Contains(string(out), "started") {
				t.Errorf("CI=%q: err %v, output:\n%s\nwant failed=%v and %q", tt.ci, err, out, tt.wantFail, tt.want)
			}
		})
	}
}
