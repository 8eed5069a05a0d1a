package manager

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/manager/registry"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
	"github.com/autogate/autogate/internal/tunnel"
)

// failingList is a store whose cluster listing fails with err.
type failingList struct {
	store.Store
	err error
}

func (f failingList) List(ctx context.Context, cluster string, kind resource.Kind, opts store.ListOptions) ([]store.Record, string, error) {
	if kind == registry.Kind {
		return nil, "", f.err
	}
	return f.Store.List(ctx, cluster, kind, opts)
}

// TestErrorStatuses holds the manager to the shared error table: it once
// had its own copy, which mapped neither ErrTooLarge nor a deadline.
func TestErrorStatuses(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"too large", fmt.Errorf("list: %w", store.ErrTooLarge), http.StatusRequestEntityTooLarge},
		{"deadline", fmt.Errorf("list: %w", context.DeadlineExceeded), http.StatusGatewayTimeout},
		{"fenced", fmt.Errorf("list: %w", store.ErrFenced), http.StatusServiceUnavailable},
		{"unknown", fmt.Errorf("disk on fire"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.Real{}
			st, err := bolt.Open(filepath.Join(t.TempDir(), "m.db"), clk)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			log := slog.New(slog.DiscardHandler)
			au := &auth.Service{Store: st, Cluster: "manager", Clock: clk, Params: auth.Params{Time: 1, Memory: 1024, Threads: 1}}
			if _, err := au.CreateUser(t.Context(), "v", auth.Viewer, "a long enough password"); err != nil {
				t.Fatal(err)
			}
			tok, _, err := au.IssueToken(t.Context(), "v", auth.Viewer, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			reg := &registry.Registry{Store: failingList{Store: st, err: tt.err}, Namespace: "manager", Clock: clk}
			leader := &fakeLeader{}
			leader.active.Store(true)
			s := &Server{Hub: NewHub(reg, "m-1", tunnel.LinkConfig{Heartbeat: time.Second}, clk, log), Registry: reg,
				Auth: au, Leader: leader, Logger: log, Clock: clk, Namespace: "manager", Node: "m-1", Version: "test"}
			req := httptest.NewRequestWithContext(t.Context(), "GET", "/v1/clusters", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("GET /v1/clusters with a store failing %v = %d %s, want %d", tt.err, rec.Code, rec.Body, tt.want)
			}
			if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/problem+json") {
				t.Errorf("Content-Type %q", rec.Header().Get("Content-Type"))
			}
			if tt.want == http.StatusInternalServerError && strings.Contains(rec.Body.String(), "disk on fire") {
				t.Errorf("an internal error's text reached the client: %s", rec.Body)
			}
		})
	}
}
