package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/autogate/autogate/internal/browsertest"
	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/console"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

// The web console in a real headless Chromium, against a real manager and
// two real gateways (each on its embedded store, connected to the
// manager's tunnel): everything the browser does goes through the
// manager's /ui/ and /v1/clusters/{id}/… routes.

const viewerPassword = "viewer password 0123"

// htmlOutput is what the html service prints: markup and an ANSI escape.
const htmlOutput = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"><b id="injected">bold</b>`

// consoleSetup creates, through cl, the services the console test runs.
func consoleSetup(t *testing.T, cl *client.Client) {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "repo")
	gitRepo(t, repo, map[string]string{
		"deploy.sh": "#!/bin/sh\necho deployed\n",
		"long.sh":   "#!/bin/sh\necho started\nsleep 300\n",
		"html.sh":   "#!/bin/sh\nprintf '%s\\n\\033[31mred\\033[0m\\n' '" + htmlOutput + "'\n",
	}, map[string]os.FileMode{"deploy.sh": 0o755, "long.sh": 0o755, "html.sh": 0o755})
	schema := map[string]any{
		"type": "object", "required": []any{"host"}, "additionalProperties": false,
		"properties": map[string]any{
			"host":  map[string]any{"type": "string", "minLength": 1, "description": "the host to deploy to"},
			"count": map[string]any{"type": "integer", "minimum": 1, "default": 2, "description": "how many copies"},
			"env":   map[string]any{"type": "string", "enum": []any{"dev", "prod"}, "default": "dev"},
			"token": map[string]any{"type": "string", "writeOnly": true, "description": "the API token"},
		},
	}
	for _, o := range []resource.Object{
		&resource.Repository{Meta: resource.Meta{Name: "web"}, URL: repo},
		&resource.Decorator{Meta: resource.Meta{Name: "deploy-inputs"}, Schema: schema},
		&resource.Service{Meta: resource.Meta{Name: "deploy"}, Type: resource.Executable, Repository: "web",
			Filename: "deploy.sh", Decorator: "deploy-inputs", TimeoutSeconds: 60, Description: "deploy a thing"},
		&resource.Service{Meta: resource.Meta{Name: "long"}, Type: resource.Executable, Repository: "web", Filename: "long.sh"},
		&resource.Service{Meta: resource.Meta{Name: "html"}, Type: resource.Executable, Repository: "web", Filename: "html.sh"},
	} {
		if err := cl.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
}

// screenshotDir is where the browser tests save their screenshots:
// $AUTOGATE_SCREENSHOT_DIR if set (to keep them), else the test's temp dir.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("AUTOGATE_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("browser screenshots go to %s", dir)
	return dir
}

func uiDo(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func uiEval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// uiWait waits up to d for the expression to be truthy.
func uiWait(t *testing.T, ctx context.Context, d time.Duration, js string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.getElementById('main')?.innerText || ''"))
		t.Fatalf("waiting for %s: %v; the page shows:\n%s", js, err, html)
	}
}

func uiText(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	// One evaluation: atomic against a page that re-renders meanwhile.
	js, _ := json.Marshal(css)
	s, err := chromedp.Run(ctx, chromedp.Evaluate[*string](`document.querySelector(`+string(js)+`)?.textContent ?? null`))
	if err != nil || s == nil {
		t.Fatalf("text of %s: %v (no such element?)", css, err)
	}
	return *s
}

// uiSignIn fills the console's sign-in form.
func uiSignIn(t *testing.T, tab context.Context, url, user, password string) {
	t.Helper()
	uiDo(t, tab, chromedp.Navigate(url+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#username"), user), chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#signin")), chromedp.WaitVisible(chromedp.CSS("#whoami")))
}

func TestConsole(t *testing.T) {
	requireTool(t, "git")
	requireManagerCmd(t, binPath)
	browser := browsertest.Start(t)
	shots := screenshotDir(t)

	m := lightManager(t)
	gw1 := m.localGateway("web-1", "web-gw-1")
	m.localGateway("web-2", "web-gw-2")
	mc, err := client.New(m.mgr.url, m.mgrToken, client.TLS{CAFile: m.mgrCA})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mc.CreateUser(t.Context(), wire.CreateUserRequest{Name: "vera", Role: "viewer", Password: viewerPassword}); err != nil {
		t.Fatal(err)
	}
	cl := mc.Cluster("web-1")
	release := liveSetup(t, cl)
	consoleSetup(t, cl)
	raw, err := os.ReadFile(filepath.Join(m.mgr.dataDir, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	adminPassword := strings.TrimSpace(string(raw))
	ui := m.mgr.url + "/ui/"
	count := func(service string) int {
		t.Helper()
		es, err := cl.Executions(t.Context(), client.ExecutionFilter{Service: service})
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}

	t.Run("sign in: CSP and cookie flags", func(t *testing.T) {
		tab := browsertest.Tab(t, browser)
		resp, err := chromedp.Run(tab, chromedp.NavigateResponse(ui))
		if err != nil {
			t.Fatal(err)
		}
		hdr := map[string]string{}
		for k, v := range resp.Headers {
			s, _ := v.(string)
			hdr[strings.ToLower(k)] = s
		}
		if hdr["content-security-policy"] != console.CSP || hdr["x-content-type-options"] != "nosniff" || hdr["referrer-policy"] != "no-referrer" {
			t.Errorf("page headers %v; want the CSP %q, nosniff, no-referrer", hdr, console.CSP)
		}
		uiSignIn(t, tab, m.mgr.url, "admin", adminPassword)
		if got := uiText(t, tab, "#whoami"); got != "admin (admin)" {
			t.Errorf("signed in as %q", got)
		}
		cookies, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{m.mgr.url}})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, c := range cookies.Cookies {
			seen[c.Name] = true
			switch c.Name {
			case "autogate_session":
				if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteStrict || c.Path != "/" {
					t.Errorf("session cookie: HttpOnly %v Secure %v SameSite %q Path %q", c.HTTPOnly, c.Secure, c.SameSite, c.Path)
				}
			case "autogate_csrf":
				if c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteStrict {
					t.Errorf("CSRF cookie: HttpOnly %v Secure %v SameSite %q", c.HTTPOnly, c.Secure, c.SameSite)
				}
			}
		}
		if !seen["autogate_session"] || !seen["autogate_csrf"] {
			t.Errorf("cookies after sign-in: %v", seen)
		}
		if js := uiEval[string](t, tab, "document.cookie"); strings.Contains(js, "autogate_session") || strings.Contains(js, "agt_") {
			t.Errorf("the page's script can read the session token: %q", js)
		}
		browsertest.Screenshot(t, tab, shots, "sign-in")
	})

	t.Run("two clusters through the manager", func(t *testing.T) {
		tab := browsertest.Tab(t, browser)
		uiDo(t, tab, chromedp.Navigate(ui+"#/"))
		uiWait(t, tab, 30*time.Second, `document.querySelectorAll('main tbody tr').length === 2`)
		got := uiText(t, tab, "main table")
		for _, want := range []string{"web-1", "web-2", "web-gw-1", "web-gw-2", "connected"} {
			if !strings.Contains(got, want) {
				t.Errorf("clusters table %q lacks %q", got, want)
			}
		}
		if got := uiText(t, tab, "main"); strings.Contains(got, "null") || strings.Contains(got, "undefined") {
			t.Errorf("the page shows a missing value as text: %q", got)
		}
		browsertest.Screenshot(t, tab, shots, "clusters")

		uiDo(t, tab, chromedp.Evaluate[chromedp.Void](`location.hash = '#/c/web-1/nodes'`))
		uiWait(t, tab, 30*time.Second, `document.querySelector('h1')?.textContent === 'Nodes of web-1' && document.querySelector('main tbody') !== null`)
		if got := uiText(t, tab, "main tbody"); !strings.Contains(got, "web-gw-1") || !strings.Contains(got, "active") {
			t.Errorf("nodes of web-1: %q", got)
		}
		uiDo(t, tab, chromedp.Evaluate[chromedp.Void](`location.hash = '#/c/web-1/services'`))
		uiWait(t, tab, 30*time.Second, `document.querySelector('h1')?.textContent === 'Services of web-1' && document.querySelector('main tbody') !== null`)
		row := uiEval[[]string](t, tab, `[...[...document.querySelectorAll('main tbody tr')].find(tr => tr.cells[0].textContent === 'deploy').cells].map(td => td.textContent)`)
		if want := []string{"deploy", "executable", "web @ default branch", "deploy-inputs", "60 s", "no", "Run"}; strings.Join(row, "|") != strings.Join(want, "|") {
			t.Errorf("services row of deploy: %q, want %q", row, want)
		}
	})

	t.Run("run form from the decorator's schema", func(t *testing.T) {
		tab := browsertest.Tab(t, browser)
		uiDo(t, tab, chromedp.Navigate(ui+"#/c/web-1/services/deploy/run"), chromedp.WaitVisible(chromedp.CSS("#run-form")))
		type form struct {
			Token, Count, HostDesc, EnvValue string
			Env                              []string
			HostRequired                     bool
			Fields                           []string
		}
		f := uiEval[form](t, tab, `({token: document.getElementById('in-token').type, count: document.getElementById('in-count').value,
			hostDesc: document.querySelector('[data-field=host] .desc')?.textContent || '',
			env: [...document.querySelectorAll('#in-env option')].map(o => o.textContent), envValue: document.getElementById('in-env').value,
			hostRequired: !!document.querySelector('[data-field=host] .req'),
			fields: [...document.querySelectorAll('[data-field]')].map(e => e.dataset.field).sort()})`)
		if f.Token != "password" || f.Count != "2" || f.HostDesc != "the host to deploy to" || !f.HostRequired ||
			strings.Join(f.Env, ",") != "—,dev,prod" || f.EnvValue != `"dev"` || strings.Join(f.Fields, ",") != "count,env,host,token" {
			t.Errorf("generated form %+v", f)
		}
		before := count("deploy")
		// Violating values: the host missing, count below its minimum.
		uiDo(t, tab, chromedp.SetValue(chromedp.CSS("#in-count"), "0"), chromedp.Click(chromedp.CSS("#submit-run")))
		uiWait(t, tab, 30*time.Second, `document.getElementById('err-count').textContent !== '' && document.getElementById('err-host').textContent !== ''`)
		if got := uiText(t, tab, "#err-count"); !strings.Contains(got, "1") {
			t.Errorf("count's error %q does not name the minimum", got)
		}
		if got := uiText(t, tab, "#err-host"); got != "required" {
			t.Errorf("host's error %q", got)
		}
		if got := uiText(t, tab, "#err-env") + uiText(t, tab, "#err-token"); got != "" {
			t.Errorf("errors on valid fields: %q", got)
		}
		browsertest.Screenshot(t, tab, shots, "run-form-errors")
		if n := count("deploy"); n != before {
			t.Fatalf("a refused form ran: %d executions, want %d", n, before)
		}
		// Valid now: the run starts and the page moves to it.
		uiDo(t, tab, chromedp.SendKeys(chromedp.CSS("#in-host"), "web01"), chromedp.SetValue(chromedp.CSS("#in-count"), "3"),
			chromedp.SendKeys(chromedp.CSS("#in-token"), "tok-0123456789"), chromedp.Click(chromedp.CSS("#submit-run")))
		uiWait(t, tab, 30*time.Second, `location.hash.includes('/executions/') && document.getElementById('facts') !== null`)
		id := uiEval[string](t, tab, `location.hash.split('/').pop()`)
		e, err := cl.Wait(t.Context(), id, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if n := count("deploy"); n != before+1 {
			t.Errorf("%d executions after a valid run, want %d", n, before+1)
		}
		if e.Service != "deploy" || e.Inputs["host"] != "web01" || e.Inputs["count"] != float64(3) || e.Inputs["env"] != "dev" {
			t.Errorf("execution %s: service %s inputs %v", id, e.Service, e.Inputs)
		}
		uiWait(t, tab, 30*time.Second, `document.getElementById('exit-code')?.textContent === '0'`)
		browsertest.Screenshot(t, tab, shots, "run-started")
	})

	t.Run("live output before the run ends", func(t *testing.T) {
		tab := browsertest.Tab(t, browser)
		e, err := cl.Run(t.Context(), "ticker", wire.RunRequest{Async: true})
		if err != nil {
			t.Fatal(err)
		}
		uiDo(t, tab, chromedp.Navigate(ui+"#/c/web-1/executions/"+e.ID))
		uiWait(t, tab, 45*time.Second, `document.getElementById('output')?.textContent.includes('tick 5')`)
		x, err := cl.Execution(t.Context(), e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if x.Status != execution.Running {
			t.Errorf("status when the browser showed the fifth line: %s, want running (the run waits for the test)", x.Status)
		}
		if got := uiText(t, tab, "#output"); !strings.HasPrefix(got, "token: "+execution.Redacted+"\ntick 1\ntick 2\ntick 3\ntick 4\ntick 5\n") {
			t.Errorf("output shown %q", got)
		}
		browsertest.Screenshot(t, tab, shots, "live-output")
		if err := os.WriteFile(release, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		uiWait(t, tab, 45*time.Second, `document.getElementById('exit-code')?.textContent === '3'`)
		if got := uiText(t, tab, "#stream-state"); got != "ended: failed" {
			t.Errorf("stream state %q", got)
		}
		if got := uiText(t, tab, "#output"); got != wantTicker+"bye\n" {
			t.Errorf("final output %q, want each line once", got)
		}
	})

	t.Run("cancel a long run from its page", func(t *testing.T) {
		tab := browsertest.Tab(t, browser)
		e, err := cl.Run(t.Context(), "long", wire.RunRequest{Async: true})
		if err != nil {
			t.Fatal(err)
		}
		uiDo(t, tab, chromedp.Navigate(ui+"#/c/web-1/executions/"+e.ID))
		uiWait(t, tab, 30*time.Second, `document.getElementById('output')?.textContent.includes('started')`)
		uiDo(t, tab, chromedp.Click(chromedp.CSS("#cancel")))
		uiWait(t, tab, 45*time.Second, `document.getElementById('facts')?.dataset.status === 'canceled'`)
		x, err := cl.Execution(t.Context(), e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if x.Status != execution.Canceled {
			t.Errorf("status after cancel: %s", x.Status)
		}
		if n := uiEval[int](t, tab, `document.querySelectorAll('#cancel').length`); n != 0 {
			t.Errorf("a finished run still offers cancel")
		}
		browsertest.Screenshot(t, tab, shots, "canceled")
	})

	t.Run("service output is text", func(t *testing.T) {
		tab := browsertest.Tab(t, browser)
		e, err := cl.Run(t.Context(), "html", wire.RunRequest{WaitSeconds: 30})
		if err != nil {
			t.Fatal(err)
		}
		uiDo(t, tab, chromedp.Navigate(ui+"#/c/web-1/executions/"+e.ID))
		uiWait(t, tab, 30*time.Second, `document.getElementById('stream-state')?.textContent.startsWith('ended')`)
		type dom struct {
			Text     string
			Injected bool
			Pwned    any
			NonSpans int
		}
		got := uiEval[dom](t, tab, `({text: document.getElementById('output').textContent,
			injected: document.getElementById('injected') !== null || document.querySelector('#output img, #output script, #output b') !== null,
			pwned: window.__pwned ?? null, nonSpans: document.querySelectorAll('#output :not(span)').length})`)
		if got.Text != htmlOutput+"\n\u241b[31mred\u241b[0m\n" || got.Injected || got.Pwned != nil || got.NonSpans != 0 {
			t.Errorf("output as shown: %+v", got)
		}
		if got := uiText(t, tab, "#facts") + uiText(t, tab, ".actions"); strings.Contains(got, "null") || strings.Contains(got, "undefined") {
			t.Errorf("the page shows a missing value as text: %q", got)
		}
		browsertest.Screenshot(t, tab, shots, "html-as-text")
	})

	t.Run("viewer: no controls, forced POST refused", func(t *testing.T) {
		tab := browsertest.Tab(t, browser)
		uiDo(t, tab, chromedp.Navigate(ui))
		if _, err := chromedp.Call(tab, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
		uiSignIn(t, tab, m.mgr.url, "vera", viewerPassword)
		if got := uiText(t, tab, "#whoami"); got != "vera (viewer)" {
			t.Fatalf("signed in as %q", got)
		}
		uiDo(t, tab, chromedp.Evaluate[chromedp.Void](`location.hash = '#/c/web-1/services'`))
		uiWait(t, tab, 30*time.Second, `document.querySelector('main table')?.textContent.includes('deploy')`)
		if n := uiEval[int](t, tab, `document.querySelectorAll('a.run, #submit-run').length`); n != 0 {
			t.Errorf("a viewer sees %d run controls", n)
		}
		browsertest.Screenshot(t, tab, shots, "viewer-services")

		e, err := cl.Run(t.Context(), "long", wire.RunRequest{Async: true})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Cancel(context.Background(), e.ID) //nolint:errcheck // clean-up; the assertions are above
		uiDo(t, tab, chromedp.Evaluate[chromedp.Void](`location.hash = '#/c/web-1/executions/`+e.ID+`'`))
		uiWait(t, tab, 30*time.Second, `document.getElementById('output')?.textContent.includes('started')`)
		if n := uiEval[int](t, tab, `document.querySelectorAll('#cancel').length`); n != 0 {
			t.Errorf("a viewer sees the cancel button")
		}
		uiDo(t, tab, chromedp.Evaluate[chromedp.Void](`location.hash = '#/c/web-1/dead'`))
		uiWait(t, tab, 30*time.Second, `document.getElementById('filters') !== null`)
		if n := uiEval[int](t, tab, `document.querySelectorAll('#redrive').length`); n != 0 {
			t.Errorf("a viewer sees the redrive button")
		}

		before := count("deploy")
		type forced struct {
			WithCSRF, Without, Cancel, CSRFLen int
			Detail                             string
		}
		got := uiEval[forced](t, tab, `(async () => {
			const csrf = (document.cookie.split('; ').find(c => c.startsWith('autogate_csrf=')) || '').slice('autogate_csrf='.length);
			const post = (path, body, headers) => fetch(path, {method: 'POST', credentials: 'same-origin',
				headers: {'Content-Type': 'application/json', ...headers}, body: JSON.stringify(body)});
			const r1 = await post('/v1/clusters/web-1/services/deploy/run', {async: true, inputs: {host: 'x'}}, {'X-CSRF-Token': csrf});
			const detail = (await r1.json()).detail;
			const r2 = await post('/v1/clusters/web-1/services/deploy/run', {async: true, inputs: {host: 'x'}}, {});
			const r3 = await post('/v1/clusters/web-1/executions/`+e.ID+`/cancel', {}, {'X-CSRF-Token': csrf});
			return {withCSRF: r1.status, without: r2.status, cancel: r3.status, csrfLen: csrf.length, detail};
		})()`)
		if got.WithCSRF != 403 || got.Without != 403 || got.Cancel != 403 || got.CSRFLen == 0 || !strings.Contains(got.Detail, "viewer") {
			t.Errorf("forced POSTs by a viewer: %+v; want 403 each (with a valid CSRF token: by role)", got)
		}
		if n := count("deploy"); n != before {
			t.Errorf("a forced POST ran: %d executions, want %d", n, before)
		}
		if x, err := cl.Execution(t.Context(), e.ID); err != nil || x.CancelRequested || x.Status.Terminal() {
			t.Errorf("the viewer's forced cancel had an effect: %+v, %v", x, err)
		}
	})

	// Last: cookies are per host, not per port, so signing in to the
	// gateway (same host as the manager here) replaces the manager's session.
	t.Run("a gateway's own console", func(t *testing.T) {
		tab := browsertest.Tab(t, browser)
		raw, err := os.ReadFile(filepath.Join(gw1.dataDir, "admin-password"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := chromedp.Run(tab, chromedp.NavigateResponse(gw1.url+"/ui/"))
		if err != nil {
			t.Fatal(err)
		}
		csp := ""
		for k, v := range resp.Headers {
			if strings.EqualFold(k, "Content-Security-Policy") {
				csp, _ = v.(string)
			}
		}
		if csp != console.CSP {
			t.Errorf("gateway console CSP %q", csp)
		}
		uiSignIn(t, tab, gw1.url, "admin", strings.TrimSpace(string(raw)))
		uiWait(t, tab, 30*time.Second, `document.querySelector('main table')?.textContent.includes('web-gw-1')`)
		if got := uiText(t, tab, "main table"); !strings.Contains(got, "web-1") || strings.Contains(got, "web-2") {
			t.Errorf("a gateway's cluster page shows %q; want its own cluster only", got)
		}
		uiDo(t, tab, chromedp.Evaluate[chromedp.Void](`location.hash = '#/c/web-1/executions?service=ticker'`))
		uiWait(t, tab, 30*time.Second, `document.getElementById('filters') !== null && document.querySelectorAll('main tbody tr').length === 1`)
		if got := uiText(t, tab, "main tbody"); !strings.Contains(got, "ticker") || !strings.Contains(got, "failed") {
			t.Errorf("the gateway's executions filtered by service: %q", got)
		}
		// Paging follows the server's nextPageToken: older, then newer again.
		ids := func() string {
			return uiEval[string](t, tab, `[...document.querySelectorAll('main tbody tr td:first-child')].map(td => td.textContent).join(',')`)
		}
		uiDo(t, tab, chromedp.Evaluate[chromedp.Void](`location.hash = '#/c/web-1/executions?limit=2'`))
		uiWait(t, tab, 30*time.Second, `location.hash.includes('limit=2') && document.getElementById('f-service')?.value === '' && document.querySelectorAll('main tbody tr').length === 2 && !document.getElementById('next-page').disabled`)
		first := ids()
		uiDo(t, tab, chromedp.Click(chromedp.CSS("#next-page")))
		uiWait(t, tab, 30*time.Second, `location.hash.includes('pageToken=') && document.querySelectorAll('main tbody tr').length > 0 && !document.getElementById('prev-page').disabled`)
		second := ids()
		if second == first || strings.Contains(first, strings.Split(second, ",")[0]) {
			t.Errorf("page 2 %q repeats page 1 %q", second, first)
		}
		uiDo(t, tab, chromedp.Click(chromedp.CSS("#prev-page")))
		uiWait(t, tab, 30*time.Second, `!location.hash.includes('pageToken=') && document.getElementById('prev-page').disabled`)
		if back := ids(); back != first {
			t.Errorf("back to page 1: %q, want %q", back, first)
		}
		browsertest.Screenshot(t, tab, shots, "gateway")

		// Sign-out revokes the token and clears the cookies.
		uiDo(t, tab, chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login")))
		cookies, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{gw1.url}})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cookies.Cookies {
			if c.Name == "autogate_session" || c.Name == "autogate_csrf" {
				t.Errorf("cookie %s still set after sign-out", c.Name)
			}
		}
		if st := uiEval[int](t, tab, `fetch('/ui/session').then(r => r.status)`); st != 401 {
			t.Errorf("GET /ui/session after sign-out: %d, want 401", st)
		}
	})
}

// TestConsoleDeadLetters: a gateway with an SQS work queue and its DLQ; a
// run whose message sits in the DLQ shows on the dead-letters page, and
// the page's redrive sends it back, after which a runner runs it.
func TestConsoleDeadLetters(t *testing.T) {
	requireTool(t, "git")
	browser := browsertest.Start(t)
	shots := screenshotDir(t)
	d := newDistributed(t, 1)
	a := d.active(-1)
	cl := d.client(a)
	d.setup(cl)
	ctx := t.Context()
	// No runner yet: the message waits in the work queue, and the test
	// moves it to the DLQ as SQS does after repeated failed receives.
	e, err := cl.Run(ctx, "noop", wire.RunRequest{Async: true})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for moved := false; !moved; {
		out, err := d.q.Client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(d.q.URL), MaxNumberOfMessages: 1, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if !strings.Contains(aws.ToString(m.Body), e.ID) {
				continue
			}
			if _, err := d.q.Client.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(d.q.DLQURL), MessageBody: m.Body}); err != nil {
				t.Fatal(err)
			}
			if _, err := d.q.Client.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(d.q.URL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
			moved = true
		}
		if !moved && time.Now().After(deadline) {
			t.Fatalf("the message of %s never showed in the work queue", e.ID)
		}
	}
	waitFor(t, func() bool {
		x, err := cl.Execution(ctx, e.ID)
		return err == nil && x.DeadLettered
	})

	tab := browsertest.Tab(t, browser)
	raw, err := os.ReadFile(d.passFile)
	if err != nil {
		t.Fatal(err)
	}
	url := d.nodes[a].url
	uiSignIn(t, tab, url, "admin", strings.TrimSpace(string(raw)))
	uiDo(t, tab, chromedp.Evaluate[chromedp.Void](`location.hash = '#/c/`+d.id+`/dead'`))
	uiWait(t, tab, 30*time.Second, `document.getElementById('filters') !== null && document.querySelector('main tbody')?.textContent.includes('`+e.ID+`')`)
	if n := uiEval[int](t, tab, `document.querySelectorAll('main tbody tr').length`); n != 1 {
		t.Errorf("dead letters page lists %d runs, want 1", n)
	}
	browsertest.Screenshot(t, tab, shots, "dead-letters")
	uiDo(t, tab, chromedp.Click(chromedp.CSS("#redrive")))
	uiWait(t, tab, 30*time.Second, `document.getElementById('redrive-result')?.textContent !== ''`)
	if got := uiText(t, tab, "#redrive-result"); got != "Moved 1 message(s) back to the work queue." {
		t.Fatalf("redrive result %q", got)
	}
	if v, _ := d.q.Count(t, d.q.DLQURL); v != 0 {
		t.Errorf("DLQ holds %d after the console's redrive", v)
	}
	d.startRunner(0)
	if x := await(t, cl, e.ID); x.Status != execution.Succeeded {
		t.Errorf("the redriven run ended %s (%s), want succeeded", x.Status, x.Reason)
	}
}
