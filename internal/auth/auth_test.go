package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/store/bolt"
)

var fast = Params{Time: 1, Memory: 1024, Threads: 1}

func newService(t *testing.T) (*Service, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &Service{Store: st, Cluster: "default", Clock: clk, Params: fast, TokenTTL: time.Hour}, clk
}

func TestRoles(t *testing.T) {
	tests := []struct {
		role Role
		want [4]bool // Read, Run, Write, Manage
	}{
		{Admin, [4]bool{true, true, true, true}},
		{Operator, [4]bool{true, true, false, false}},
		{Viewer, [4]bool{true, false, false, false}},
		{Role("root"), [4]bool{}},
	}
	for _, tt := range tests {
		for a := Read; a <= Manage; a++ {
			if got := tt.role.Allows(a); got != tt.want[a] {
				t.Errorf("%s.Allows(%d) = %v, want %v", tt.role, a, got, tt.want[a])
			}
		}
	}
}

func TestPasswordHash(t *testing.T) {
	h := HashPassword("correct horse battery", fast)
	if strings.Contains(h, "correct") || !strings.HasPrefix(h, "$argon2id$") {
		t.Fatalf("hash %q", h)
	}
	if !CheckPassword("correct horse battery", h) {
		t.Error("right password rejected")
	}
	for _, bad := range []string{"", "correct horse batter", "Correct horse battery"} {
		if CheckPassword(bad, h) {
			t.Errorf("wrong password %q accepted", bad)
		}
	}
	for _, enc := range []string{"", "$argon2id$", "$argon2id$v=19$m=1,t=1,p=1$$", "$bcrypt$x$y$z$w"} {
		if CheckPassword("x", enc) {
			t.Errorf("malformed hash %q accepted", enc)
		}
	}
}

func TestLoginAuthenticateRevoke(t *testing.T) {
	s, clk := newService(t)
	ctx := t.Context()
	if _, err := s.CreateUser(ctx, "ops", Operator, "short"); err == nil {
		t.Error("short password accepted")
	}
	if _, err := s.CreateUser(ctx, "ops", Operator, "a long enough password"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Login(ctx, "ops", "wrong password here"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("wrong password login err = %v", err)
	}
	if _, _, err := s.Login(ctx, "nobody", "a long enough password"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("unknown user login err = %v", err)
	}
	tok, _, err := s.Login(ctx, "ops", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Authenticate(ctx, tok)
	if err != nil || p.User != "ops" || p.Role != Operator {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	for _, bad := range []string{"", "agt_", tok + "x", "Bearer " + tok} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) err = %v, want ErrUnauthenticated", bad, err)
		}
	}
	clk.Advance(2 * time.Hour)
	if _, err := s.Authenticate(ctx, tok); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("expired token err = %v", err)
	}
	tok2, _, err := s.Login(ctx, "ops", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, tok2); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("revoked token err = %v", err)
	}
}

func TestEnsureAdmin(t *testing.T) {
	s, _ := newService(t)
	file := filepath.Join(t.TempDir(), "admin-password")
	created, err := s.EnsureAdmin(t.Context(), file)
	if err != nil || !created {
		t.Fatalf("EnsureAdmin = %v, %v", created, err)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %v", fi.Mode().Perm())
	}
	if _, _, err := s.Login(t.Context(), "admin", strings.TrimSpace(string(raw))); err != nil {
		t.Errorf("admin login with generated password: %v", err)
	}
	created, err = s.EnsureAdmin(t.Context(), file)
	if err != nil || created {
		t.Errorf("second EnsureAdmin = %v, %v; want false", created, err)
	}
}

func TestEnsureAdminUnwritableFile(t *testing.T) {
	s, _ := newService(t)
	bad := filepath.Join(t.TempDir(), "missing-dir", "admin-password")
	if _, err := s.EnsureAdmin(t.Context(), bad); err == nil {
		t.Fatal("EnsureAdmin with an unwritable password file succeeded")
	}
	// Nothing half-done: the next start can still create the admin.
	good := filepath.Join(t.TempDir(), "admin-password")
	if created, err := s.EnsureAdmin(t.Context(), good); err != nil || !created {
		t.Fatalf("retry EnsureAdmin = %v, %v; want created", created, err)
	}
}
