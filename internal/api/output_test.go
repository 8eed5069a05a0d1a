package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/wire"
)

type sseEvent struct{ name, id, data string }

// readEvents reads events until the stream ends (or n events, if n > 0).
func readEvents(t *testing.T, resp *http.Response, n int) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.name != "" {
				out = append(out, cur)
				if n > 0 && len(out) == n {
					return out
				}
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			cur.name = line[len("event: "):]
		case strings.HasPrefix(line, "id: "):
			cur.id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[len("data: "):]
		default:
			t.Errorf("unexpected line %q", line)
		}
	}
	return out
}

func (e *env) follow(t *testing.T, role auth.Role, path, lastID string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+path, nil)
	if tok := e.tokens[role]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (e *env) storeExecution(t *testing.T, x *execution.Execution) *execution.Execution {
	t.Helper()
	if x.ID == "" {
		x.ID = execution.NewID(time.Now())
	}
	x.Cluster, x.Service, x.CreatedAt = "default", "s", time.Now()
	if err := e.cat.CreateExecution(t.Context(), x); err != nil {
		t.Fatal(err)
	}
	return x
}

func event(name, id, data string) sseEvent { return sseEvent{name, id, data} }

func TestOutputStreamOfAFinishedRun(t *testing.T) {
	e := newEnv(t)
	code := 3
	x := e.storeExecution(t, &execution.Execution{Status: execution.Failed, ExitCode: &code,
		Stdout: execution.Output{Data: "hello world\n", Bytes: 12}, Stderr: execution.Output{Data: "oops <b>\n", Bytes: 9}})
	end := event("end", "", `{"status":"failed","exitCode":3}`)
	tests := []struct {
		name, query, lastID string
		want                []sseEvent
	}{
		{"from the start", "", "", []sseEvent{
			event("output", "12.0", `{"stream":"stdout","text":"hello world\n"}`),
			event("output", "12.9", `{"stream":"stderr","text":"oops \u003cb\u003e\n"}`), end}},
		{"resume with Last-Event-ID", "", "6.0", []sseEvent{
			event("output", "12.0", `{"stream":"stdout","text":"world\n"}`),
			event("output", "12.9", `{"stream":"stderr","text":"oops \u003cb\u003e\n"}`), end}},
		{"resume with from", "?from=12.5", "", []sseEvent{event("output", "12.9", `{"stream":"stderr","text":"\u003cb\u003e\n"}`), end}},
		{"the header wins over from", "?from=0.0", "12.9", []sseEvent{end}},
		{"past the end", "", "100.100", []sseEvent{end}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.follow(t, auth.Viewer, "/v1/executions/"+x.ID+"/output"+tt.query, tt.lastID)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			got := readEvents(t, resp, 0)
			if len(got) != len(tt.want) {
				t.Fatalf("got %q\nwant %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("event %d: got %q want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestOutputStreamRefusals(t *testing.T) {
	e := newEnv(t)
	x := e.storeExecution(t, &execution.Execution{Status: execution.Succeeded})
	tests := []struct {
		name       string
		role       auth.Role
		path, last string
		want       int
	}{
		{"no token", "", "/v1/executions/" + x.ID + "/output", "", 401},
		{"unknown execution", auth.Viewer, "/v1/executions/" + execution.NewID(time.Now()) + "/output", "", 404},
		{"bad offsets", auth.Viewer, "/v1/executions/" + x.ID + "/output", "12", 400},
		{"negative offsets", auth.Viewer, "/v1/executions/" + x.ID + "/output?from=-1.0", "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.follow(t, tt.role, tt.path, tt.last)
			if resp.StatusCode != tt.want || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
				t.Errorf("status %d (%s), want %d with a problem document", resp.StatusCode, resp.Header.Get("Content-Type"), tt.want)
			}
		})
	}
}

// TestOutputStreamFollowsTheRecord: a run held by a remote runner is
// marked followed, its flushed output arrives as it is flushed, before the
// end, and the end carries the exit code.
func TestOutputStreamFollowsTheRecord(t *testing.T) {
	e := newEnv(t)
	x := e.storeExecution(t, &execution.Execution{Status: execution.Running, Node: "runner-1", Attempt: 1,
		Stdout: execution.Output{Data: "line 1\n", Bytes: 7}})
	resp := e.follow(t, auth.Viewer, "/v1/executions/"+x.ID+"/output", "")
	if got := readEvents(t, resp, 1); len(got) != 1 || got[0] != event("output", "7.0", `{"stream":"stdout","text":"line 1\n"}`) {
		t.Fatalf("first event: got %q", got)
	}
	rec, err := e.cat.Execution(t.Context(), x.ID)
	if err != nil || !rec.Followed(time.Now()) {
		t.Fatalf("record not marked followed: %v %v", rec.FollowedUntil, err)
	}
	mutate := func(fn func(*execution.Execution)) {
		if _, err := e.cat.MutateExecution(t.Context(), x.ID, func(r *execution.Execution) error { fn(r); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	mutate(func(r *execution.Execution) { r.Stdout = execution.Output{Data: "line 1\nline 2\n", Bytes: 14} })
	if got := readEvents(t, resp, 1); len(got) != 1 || got[0] != event("output", "14.0", `{"stream":"stdout","text":"line 2\n"}`) {
		t.Fatalf("flushed line: got %q", got)
	}
	code := 0
	mutate(func(r *execution.Execution) {
		r.Stdout = execution.Output{Data: "line 1\nline 2\nbye\n", Bytes: 18}
		r.ExitCode = &code
		if err := r.Finish("runner-1", 1, time.Now(), execution.Succeeded, "", false); err != nil {
			t.Fatal(err)
		}
	})
	got := readEvents(t, resp, 0)
	want := []sseEvent{event("output", "18.0", `{"stream":"stdout","text":"bye\n"}`), event("end", "", `{"status":"succeeded","exitCode":0}`)}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("end: got %q want %q", got, want)
	}
	var end wire.OutputEnd
	if err := json.Unmarshal([]byte(got[1].data), &end); err != nil || end.ExitCode == nil || *end.ExitCode != 0 {
		t.Errorf("end data %q: %v", got[1].data, err)
	}
}

func TestOutputStreamInTheDocument(t *testing.T) {
	e := newEnv(t)
	st, body, _ := e.do(t, "", "GET", "/v1/openapi.json", "")
	if st != 200 {
		t.Fatalf("openapi: %d", st)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Security  []map[string][]string `json:"security"`
			Responses map[string]struct {
				Content map[string]json.RawMessage `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	op := doc.Paths["/v1/executions/{id}/output"]["get"]
	sse := string(op.Responses["200"].Content["text/event-stream"])
	if len(op.Security) == 0 || !strings.Contains(sse, `"Event output"`) || !strings.Contains(sse, `"Event end"`) || op.Responses["404"].Content == nil {
		t.Errorf("output operation in the document: security %v, 200 %s, 404 %v", op.Security, sse, op.Responses["404"])
	}
}
