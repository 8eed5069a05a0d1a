package registry

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
	"github.com/autogate/autogate/internal/wire"
)

func newRegistry(t *testing.T) (*Registry, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	st, err := bolt.Open(filepath.Join(t.TempDir(), "r.db"), clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &Registry{Store: st, Namespace: "manager", Clock: clk}, clk
}

func TestClusterOf(t *testing.T) {
	tests := []struct {
		cred string
		want string
		ok   bool
	}{
		{"agc_eu-1_abc", "eu-1", true},
		{"agc_eu-1", "", false},
		{"agc__abc", "", false},
		{"agt_eu-1_abc", "", false},
		{"agc_EU_1_abc", "", false},
		{"agc_eu-1_" + strings.Repeat("a", 300), "", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.20s", tt.cred), func(t *testing.T) {
			got, err := ClusterOf(tt.cred)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("ClusterOf(%q) = %q, %v; want %q ok=%v", tt.cred, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestCreateAndVerify(t *testing.T) {
	g, _ := newRegistry(t)
	eu, err := g.Create(t.Context(), wire.CreateClusterRequest{ID: "eu-1", Region: "eu-west-1", Account: "123456789012"})
	if err != nil {
		t.Fatal(err)
	}
	us, err := g.Create(t.Context(), wire.CreateClusterRequest{ID: "us-1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cred    string
		want    string
		wantErr error
	}{
		{"eu-1's credential", eu.Credential, "eu-1", nil},
		{"us-1's credential", us.Credential, "us-1", nil},
		{"eu-1's secret under us-1's ID", "agc_us-1_" + strings.TrimPrefix(eu.Credential, "agc_eu-1_"), "", ErrBadCredential},
		{"unknown cluster", "agc_ap-1_" + strings.TrimPrefix(eu.Credential, "agc_eu-1_"), "", ErrBadCredential},
		{"garbage", "hello", "", ErrBadCredential},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := g.Verify(t.Context(), tt.cred)
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	raw, err := g.Store.Get(t.Context(), g.key("eu-1"))
	if err != nil || strings.Contains(string(raw.Data), eu.Credential) {
		t.Errorf("the stored record holds the credential (or is missing: %v)", err)
	}
	if _, err := g.Create(t.Context(), wire.CreateClusterRequest{ID: "eu-1"}); !errors.Is(err, store.ErrExists) {
		t.Errorf("second create = %v, want ErrExists", err)
	}
	for _, bad := range []wire.CreateClusterRequest{{ID: "manager"}, {ID: "Eu"}, {ID: "x", Region: "EU WEST"}, {ID: "x", Account: "1"}} {
		if _, err := g.Create(t.Context(), bad); !errors.Is(err, resource.ErrInvalid) {
			t.Errorf("Create(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if err := g.Delete(t.Context(), "eu-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Verify(t.Context(), eu.Credential); !errors.Is(err, ErrBadCredential) {
		t.Errorf("credential of a deleted cluster = %v, want ErrBadCredential", err)
	}
}

func TestAdmitFencesEpochs(t *testing.T) {
	g, clk := newRegistry(t)
	if _, err := g.Create(t.Context(), wire.CreateClusterRequest{ID: "eu-1"}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		node  string
		epoch int64
		ok    bool
	}{
		{"first", "gw-1", 3, true},
		{"same epoch again (reconnect)", "gw-1", 3, true},
		{"newer", "gw-2", 4, true},
		{"older", "gw-1", 3, false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			c, err := g.Admit(t.Context(), "eu-1", s.node, s.epoch, "v1")
			if s.ok && (err != nil || c.Epoch != s.epoch || c.Node != s.node) {
				t.Errorf("Admit = %+v, %v", c, err)
			}
			if !s.ok && !errors.Is(err, ErrStaleEpoch) {
				t.Errorf("Admit = %v, want ErrStaleEpoch", err)
			}
		})
	}
	clk.Advance(time.Minute)
	hb := clk.Now().Add(-time.Second)
	if err := g.Disconnected(t.Context(), "eu-1", "gw-1", 3, hb); err != nil {
		t.Fatal(err)
	}
	if c, _ := g.Get(t.Context(), "eu-1"); !c.LastHeartbeat.IsZero() && c.LastHeartbeat.Equal(hb) {
		t.Error("an old connection's disconnect overwrote the current one's state")
	}
	if err := g.Disconnected(t.Context(), "eu-1", "gw-2", 4, hb); err != nil {
		t.Fatal(err)
	}
	if c, _ := g.Get(t.Context(), "eu-1"); !c.LastHeartbeat.Equal(hb) || c.Epoch != 4 || c.Status != wire.ClusterDisconnected {
		t.Errorf("after disconnect: %+v", c)
	}
	if _, err := g.Admit(t.Context(), "eu-1", "gw-1", 3, "v1"); !errors.Is(err, ErrStaleEpoch) {
		t.Errorf("the fence did not survive the disconnect: %v", err)
	}
}
