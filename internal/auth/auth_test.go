package auth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
	"github.com/autogate/autogate/internal/store/dynamo"
)

func TestMain(m *testing.M) { emulator.Main(m) }

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

// backends are the stores users and tokens live on: the embedded one, and
// a DynamoDB table (DynamoDB Local) as a cluster's gateways share it.
var backends = []struct {
	name string
	open func(t *testing.T, clk clock.Clock) store.Store
}{
	{"bolt", func(t *testing.T, clk clock.Clock) store.Store {
		st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), clk)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"dynamodb", func(t *testing.T, clk clock.Clock) store.Store {
		client := dynamo.NewClient(emulator.AWSConfig(t, emulator.DynamoDB(t)), dynamo.ClientOptions{MaxAttempts: 3, MaxBackoff: 10 * time.Millisecond})
		table := fmt.Sprintf("auth-%d", time.Now().UnixNano())
		if err := dynamo.CreateTable(t.Context(), client, table); err != nil {
			t.Fatal(err)
		}
		st, err := dynamo.New(client, dynamo.Config{Table: table, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
}

// twoNodes returns two Services on one store, as two gateways of one
// cluster (or two managers) are. The clock starts now: DynamoDB Local
// deletes items whose expiry is in the real past.
func twoNodes(t *testing.T, open func(*testing.T, clock.Clock) store.Store) (*Service, *Service) {
	t.Helper()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	st := open(t, clk)
	mk := func() *Service {
		return &Service{Store: st, Cluster: "default", Clock: clk, Params: fast, TokenTTL: time.Hour}
	}
	return mk(), mk()
}

const pw, pw2 = "a long enough password", "another long password"

func mustUser(t *testing.T, s *Service, name string, r Role) {
	t.Helper()
	if _, err := s.CreateUser(t.Context(), name, r, pw); err != nil {
		t.Fatal(err)
	}
}

func mustLogin(t *testing.T, s *Service, name, password string) string {
	t.Helper()
	tok, _, err := s.Login(t.Context(), name, password)
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	return tok
}

// wantPrincipal checks tok on every node: role "" means rejected.
func wantPrincipal(t *testing.T, tok string, role Role, nodes ...*Service) {
	t.Helper()
	for i, s := range nodes {
		p, err := s.Authenticate(t.Context(), tok)
		switch {
		case role == "" && !errors.Is(err, ErrUnauthenticated):
			t.Errorf("node %d: Authenticate = %+v, %v; want ErrUnauthenticated", i, p, err)
		case role != "" && (err != nil || p.Role != role):
			t.Errorf("node %d: Authenticate = %+v, %v; want role %s", i, p, err, role)
		}
	}
}

func TestTokenBoundToUserRecord(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			gw1, gw2 := twoNodes(t, b.open)
			mustUser(t, gw1, "root", Admin)
			mustUser(t, gw1, "rolly", Admin)
			old := mustLogin(t, gw1, "rolly", pw)
			wantPrincipal(t, old, Admin, gw1, gw2)

			// Deleted on one node: dead on both at once.
			if err := gw2.DeleteUser(ctx, "rolly"); err != nil {
				t.Fatal(err)
			}
			wantPrincipal(t, old, "", gw1, gw2)
			// Recreated with another role: the old token stays dead.
			mustUser(t, gw2, "rolly", Viewer)
			wantPrincipal(t, old, "", gw1, gw2)
			viewer := mustLogin(t, gw1, "rolly", pw)
			wantPrincipal(t, viewer, Viewer, gw1, gw2)

			// A role change revokes; the new login has the new role.
			if _, err := gw1.UpdateUser(ctx, "rolly", Operator, ""); err != nil {
				t.Fatal(err)
			}
			wantPrincipal(t, viewer, "", gw1, gw2)
			op := mustLogin(t, gw2, "rolly", pw)
			wantPrincipal(t, op, Operator, gw1, gw2)

			// Asking for the role it has changes nothing, revokes nothing.
			if _, err := gw1.UpdateUser(ctx, "rolly", Operator, ""); err != nil {
				t.Fatal(err)
			}
			wantPrincipal(t, op, Operator, gw1, gw2)

			// A password change revokes; only the new password logs in.
			if _, err := gw2.UpdateUser(ctx, "rolly", "", pw2); err != nil {
				t.Fatal(err)
			}
			wantPrincipal(t, op, "", gw1, gw2)
			if _, _, err := gw1.Login(ctx, "rolly", pw); !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("login with the old password: %v, want ErrUnauthenticated", err)
			}
			wantPrincipal(t, mustLogin(t, gw1, "rolly", pw2), Operator, gw1, gw2)

			// Another user's tokens are untouched by all of this.
			root := mustLogin(t, gw1, "root", pw)
			if err := gw1.DeleteUser(ctx, "rolly"); err != nil {
				t.Fatal(err)
			}
			wantPrincipal(t, root, Admin, gw1, gw2)
		})
	}
}

func TestUpdateUserRejects(t *testing.T) {
	s, _ := newService(t)
	ctx := t.Context()
	mustUser(t, s, "ops", Operator)
	tok := mustLogin(t, s, "ops", pw)
	tests := []struct {
		name, user string
		role       Role
		password   string
		want       error
	}{
		{"nothing to change", "ops", "", "", nil},
		{"unknown role", "ops", "root", "", nil},
		{"short password", "ops", "", "short", nil},
		{"bad name", "Ops!", Viewer, "", nil},
		{"no such user", "nobody", Viewer, "", store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.UpdateUser(ctx, tt.user, tt.role, tt.password)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("UpdateUser = %v, want an error (%v)", err, tt.want)
			}
		})
	}
	wantPrincipal(t, tok, Operator, s) // nothing changed, nothing revoked
}

func TestIssueTokenChecksRole(t *testing.T) {
	s, _ := newService(t)
	mustUser(t, s, "v", Viewer)
	if _, _, err := s.IssueToken(t.Context(), "v", Admin, time.Hour); err == nil {
		t.Error("IssueToken with a role the user does not have succeeded")
	}
	if _, _, err := s.IssueToken(t.Context(), "nobody", Viewer, time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("IssueToken for no user: %v, want ErrNotFound", err)
	}
}

func TestLastAdmin(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			s, _ := twoNodes(t, b.open)
			mustUser(t, s, "root", Admin)
			mustUser(t, s, "v", Viewer)
			if err := s.DeleteUser(ctx, "root"); !errors.Is(err, ErrLastAdmin) {
				t.Errorf("delete the last admin: %v, want ErrLastAdmin", err)
			}
			if _, err := s.UpdateUser(ctx, "root", Operator, ""); !errors.Is(err, ErrLastAdmin) {
				t.Errorf("demote the last admin: %v, want ErrLastAdmin", err)
			}
			if _, err := s.UpdateUser(ctx, "root", "", pw2); err != nil {
				t.Errorf("the last admin's password change: %v", err)
			}
			if err := s.DeleteUser(ctx, "v"); err != nil {
				t.Errorf("delete a viewer: %v", err)
			}
			// With a second admin, either may go, but not both.
			mustUser(t, s, "second", Admin)
			if _, err := s.UpdateUser(ctx, "root", Viewer, ""); err != nil {
				t.Fatalf("demote one of two admins: %v", err)
			}
			if err := s.DeleteUser(ctx, "second"); !errors.Is(err, ErrLastAdmin) {
				t.Errorf("delete the admin left: %v, want ErrLastAdmin", err)
			}
			us, err := s.ListUsers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			admins := 0
			for _, u := range us {
				if u.Role == Admin {
					admins++
				}
			}
			if admins != 1 {
				t.Errorf("%d admins left, want 1 (%+v)", admins, us)
			}
		})
	}
}

// Two admins deleting each other at once: one of them stays.
func TestLastAdminConcurrent(t *testing.T) {
	s, _ := newService(t)
	for range 20 {
		mustUser(t, s, "a", Admin)
		mustUser(t, s, "b", Admin)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, name := range []string{"a", "b"} {
			wg.Go(func() { errs[i] = s.DeleteUser(t.Context(), name) })
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("concurrent deletes of the two admins: %v, %v; want exactly one refused", errs[0], errs[1])
		}
		for i, name := range []string{"a", "b"} {
			if errs[i] == nil {
				continue
			}
			if !errors.Is(errs[i], ErrLastAdmin) {
				t.Fatalf("refusal: %v, want ErrLastAdmin", errs[i])
			}
			if err := s.Store.Delete(t.Context(), s.userKey(name), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
}
