package cli

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/api"
	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/gateway"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/store/bolt"
)

type activeLeader struct{}

func (activeLeader) Active() (bool, lease.Term) { return true, lease.Term{Holder: "gw-1"} }

// TestGetExecutionsPages runs `get executions --limit 500` against a real
// gateway API holding 520 executions: it once printed 500 rows holding only
// 100 distinct executions, because the server ignored limit and pageToken.
// gatewayConfig serves a real gateway API on a bolt store and returns a CLI
// config logged in to it as a user of role, and the catalog behind it.
func gatewayConfig(t *testing.T, role auth.Role) (string, *catalog.Catalog) {
	t.Helper()
	clk := clock.Real{}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, _ := secret.NewKeyring(make([]byte, 32))
	cat := &catalog.Catalog{Store: st, Cluster: "default", Keyring: kr, Clock: clk}
	au := &auth.Service{Store: st, Cluster: "default", Clock: clk, Params: auth.Params{Time: 1, Memory: 1024, Threads: 1}}
	log := slog.New(slog.DiscardHandler)
	s := &api.Server{Gateway: &gateway.Gateway{Catalog: cat, Queue: queue.NewLocal(), Clock: clk, Logger: log, Node: "gw-1"},
		Auth: au, Leader: activeLeader{}, Logger: log, Cluster: "default", Node: "gw-1", Version: "test"}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	if _, err := au.CreateUser(t.Context(), "u", role, "a long enough password"); err != nil {
		t.Fatal(err)
	}
	tok, _, err := au.IssueToken(t.Context(), "u", role, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("current: gw\ncontexts:\n  gw:\n    server: "+srv.URL+"\n    token: "+tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, cat
}

func TestGetExecutionsPages(t *testing.T) {
	cfg, cat := gatewayConfig(t, auth.Viewer)
	now := time.Now()
	for i := range 520 {
		at := now.Add(time.Duration(i) * time.Millisecond)
		e := &execution.Execution{ID: execution.NewID(at), Cluster: "default", Service: "s", Status: execution.Queued, CreatedAt: at}
		if err := cat.CreateExecution(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []string{"500", "7"} {
		var out, errb bytes.Buffer
		a := &App{Out: &out, Err: &errb, Getenv: func(string) string { return "" }}
		if code := a.Main(t.Context(), []string{"get", "executions", "--limit", limit, "-o", "json", "--config", cfg}); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		var rows []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, r := range rows {
			seen[r.ID] = true
		}
		if want := map[string]int{"500": 500, "7": 7}[limit]; len(rows) != want || len(seen) != want {
			t.Errorf("--limit %s: %d rows, %d distinct, want %d", limit, len(rows), len(seen), want)
		}
	}
}
