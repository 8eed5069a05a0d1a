package node_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
	"github.com/autogate/autogate/runner/node"
)

func base(t *testing.T, st store.Store) node.Config {
	t.Helper()
	kr, err := secret.NewKeyring(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return node.Config{Node: "r1", Cluster: "c1", Dir: t.TempDir(), Retention: 48 * time.Hour, RepoRefresh: time.Minute,
		OutputLimit: 1024, Store: st, Keyring: kr, Source: queue.NewLocal(), Clock: clock.NewFake(time.Now())}
}

func openStore(t *testing.T) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestNewCarriesRetentionAndRefresh(t *testing.T) {
	st := openStore(t)
	cfg := base(t, st)
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n.Repos.Refresh != time.Minute {
		t.Errorf("repository refresh: got %v want 1m", n.Repos.Refresh)
	}
	now := cfg.Clock.Now()
	e := &execution.Execution{ID: execution.NewID(now), Cluster: "c1", Service: "s", Status: execution.Queued, CreatedAt: now,
		Spec: &resource.Service{Meta: resource.Meta{Name: "s"}, Type: resource.Executable, Repository: "r", Filename: "x"}}
	if err := n.Catalog.CreateExecution(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	recs, _, err := st.List(t.Context(), "c1", resource.KindExecution, store.ListOptions{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("stored executions: %d, %v", len(recs), err)
	}
	if got, want := recs[0].ExpiresAt, now.Add(48*time.Hour); !got.Equal(want) {
		t.Errorf("expiry: got %v want %v (the configured retention)", got, want)
	}
	for _, d := range []string{"repos", "venvs", "work"} {
		if fi, err := os.Stat(filepath.Join(cfg.Dir, d)); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v", d, err)
		}
	}
}

// TestNewWorkDir: a configured WorkDir is where run directories go; it is
// created 0700.
func TestNewWorkDir(t *testing.T) {
	cfg := base(t, openStore(t))
	cfg.WorkDir = filepath.Join(t.TempDir(), "runs")
	if _, err := node.New(cfg); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(cfg.WorkDir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("WorkDir %s: %v, %v", cfg.WorkDir, fi, err)
	}
}

func TestNewRejects(t *testing.T) {
	st := openStore(t)
	tests := []struct {
		name string
		edit func(*node.Config)
	}{
		{"no directory", func(c *node.Config) { c.Dir = "" }},
		{"no retention", func(c *node.Config) { c.Retention = 0 }},
		{"negative refresh", func(c *node.Config) { c.RepoRefresh = -time.Second }},
		{"no store", func(c *node.Config) { c.Store = nil }},
		{"no keyring", func(c *node.Config) { c.Keyring = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base(t, st)
			tt.edit(&cfg)
			if _, err := node.New(cfg); !errors.Is(err, node.ErrConfig) {
				t.Errorf("got %v want node.ErrConfig", err)
			}
		})
	}
}

// recordingProtector records the protection states asked for.
type recordingProtector struct{ calls []bool }

func (p *recordingProtector) SetProtection(_ context.Context, enabled bool, _ time.Duration) error {
	p.calls = append(p.calls, enabled)
	return nil
}

// TestNewCarriesProtector: the ECS runner's task protection reaches the
// core, which holds it while it handles a message.
func TestNewCarriesProtector(t *testing.T) {
	cfg := base(t, openStore(t))
	p := &recordingProtector{}
	cfg.Protector = p
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := queue.Message{Envelope: queue.Envelope{V: queue.EnvelopeVersion, ExecutionID: execution.NewID(time.Now()), Cluster: "c1", Service: "s"}}
	n.Core.Handle(t.Context(), m) // an unknown execution: dropped
	if len(p.calls) != 2 || !p.calls[0] || p.calls[1] {
		t.Errorf("protection calls %v, want on while handling, then off", p.calls)
	}
}
