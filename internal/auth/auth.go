// Package auth holds Autogate's users, roles and bearer tokens.
//
// Passwords are hashed with argon2id (RFC 9106's second recommended setting:
// t=3, 64 MiB, 4 lanes); tokens are 256 random bits handed out once and
// stored only as their SHA-256, with an expiry after which the store itself
// forgets them, and they can be revoked at once by deleting that record. A
// leaked store therefore yields neither passwords nor usable tokens.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
)

// Role is what a principal may do.
type Role string

// The roles, from most to least powerful.
const (
	Admin    Role = "admin"    // everything, including users
	Operator Role = "operator" // read everything, run and cancel services
	Viewer   Role = "viewer"   // read everything
)

// ParseRole validates s.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case Admin, Operator, Viewer:
		return r, nil
	}
	return "", fmt.Errorf("%w role %q: want admin, operator or viewer", resource.ErrInvalid, s)
}

// Action is a class of API operation.
type Action int

// The actions, each allowed to the roles listed.
const (
	Read   Action = iota // viewer, operator, admin
	Run                  // operator, admin
	Write                // admin: create, edit, delete resources
	Manage               // admin: users
)

// Allows reports whether r may perform a.
func (r Role) Allows(a Action) bool {
	switch r {
	case Admin:
		return true
	case Operator:
		return a == Read || a == Run
	case Viewer:
		return a == Read
	}
	return false
}

// Errors callers branch on.
var (
	ErrUnauthenticated = errors.New("missing, invalid or expired credentials")
	ErrForbidden       = errors.New("forbidden")
	// ErrLastAdmin refuses to delete or demote the only admin (409).
	ErrLastAdmin = errors.New("it is the last admin; create or promote another admin first")
)

// Principal is an authenticated caller.
type Principal struct {
	User string `json:"user"`
	Role Role   `json:"role"`
	// TokenID is a short, non-secret prefix of the token's hash, for logs.
	TokenID string `json:"tokenId,omitempty"`
}

// User is a stored account.
type User struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Hash      string    `json:"hash,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// Gen is the record's generation: random, drawn anew on creation and on
	// every role or password change. Tokens record it (see the package doc).
	// Records written before it existed have none, as do their tokens.
	Gen string `json:"gen,omitempty"`
}

type tokenRecord struct {
	User string `json:"user"`
	// Role is the role at issue, for operators reading the store; the
	// principal's role is the user's current one.
	Role Role `json:"role"`
	// Gen is the user's generation at issue; the token dies with it.
	Gen       string    `json:"gen,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Service authenticates and manages users of one cluster.
type Service struct {
	Store   store.Store
	Cluster string
	Clock   clock.Clock
	// TokenTTL is how long a login token lives; default 12 h.
	TokenTTL time.Duration
	// Params are the argon2id parameters; zero means DefaultParams.
	Params Params

	// adminMu serializes the writes that could remove the last admin (a
	// delete, a role change), so two of them cannot each see the other
	// admin and both go ahead. A process lock suffices because only the
	// active node of a cluster (or the active manager) serves /v1.
	adminMu sync.Mutex
}

// Params are argon2id cost parameters.
type Params struct {
	Time    uint32
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultParams follow RFC 9106 §4's second recommendation.
var DefaultParams = Params{Time: 3, Memory: 64 << 10, Threads: 4}

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 12

func (s *Service) params() Params {
	if s.Params.Time == 0 {
		return DefaultParams
	}
	return s.Params
}

func (s *Service) ttl() time.Duration {
	if s.TokenTTL <= 0 {
		return 12 * time.Hour
	}
	return s.TokenTTL
}

// HashPassword returns an encoded argon2id hash of pw.
func HashPassword(pw string, p Params) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt) // never fails since Go 1.24
	sum := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum))
}

// CheckPassword reports whether pw matches an encoded hash.
func CheckPassword(pw, encoded string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var p Params
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || p.Memory > 1<<22 || p.Time > 64 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

func (s *Service) userKey(name string) store.Key {
	return store.Key{Cluster: s.Cluster, Kind: resource.KindUser, Name: name}
}

// newGen draws a user generation.
func newGen() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}

// CreateUser adds a user, or returns store.ErrExists.
func (s *Service) CreateUser(ctx context.Context, name string, role Role, password string) (User, error) {
	if err := resource.ValidateName(name); err != nil {
		return User{}, fmt.Errorf("user: %w", err)
	}
	if _, err := ParseRole(string(role)); err != nil {
		return User{}, err
	}
	if err := checkPassword(password); err != nil {
		return User{}, err
	}
	u := User{Name: name, Role: role, Hash: HashPassword(password, s.params()), CreatedAt: s.Clock.Now().UTC(), Gen: newGen()}
	data, err := json.Marshal(u)
	if err != nil {
		return User{}, err
	}
	if _, err := s.Store.Create(ctx, store.Record{Key: s.userKey(name), Data: data}); err != nil {
		return User{}, fmt.Errorf("create user %s: %w", name, err)
	}
	u.Hash, u.Gen = "", ""
	return u, nil
}

func checkPassword(pw string) error {
	if len(pw) < MinPasswordLen {
		return fmt.Errorf("%w password: shorter than %d characters", resource.ErrInvalid, MinPasswordLen)
	}
	return nil
}

// getUser reads a user and its record (for its version).
func (s *Service) getUser(ctx context.Context, name string) (User, store.Record, error) {
	rec, err := s.Store.Get(ctx, s.userKey(name))
	if err != nil {
		return User{}, store.Record{}, fmt.Errorf("user %s: %w", name, err)
	}
	var u User
	if err := json.Unmarshal(rec.Data, &u); err != nil {
		return User{}, store.Record{}, fmt.Errorf("decode user %s: %w", name, err)
	}
	return u, rec, nil
}

// UpdateUser changes a user's role, its password, or both (an empty role
// or password keeps it). A change revokes every token the user holds; so
// does setting a password, even the same one. Demoting the last admin is
// ErrLastAdmin.
func (s *Service) UpdateUser(ctx context.Context, name string, role Role, password string) (User, error) {
	if err := resource.ValidateName(name); err != nil {
		return User{}, fmt.Errorf("user: %w", err)
	}
	if role == "" && password == "" {
		return User{}, fmt.Errorf("%w user %s: nothing to change (give a role, a password or both)", resource.ErrInvalid, name)
	}
	if role != "" {
		if _, err := ParseRole(string(role)); err != nil {
			return User{}, err
		}
	}
	if password != "" {
		if err := checkPassword(password); err != nil {
			return User{}, err
		}
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	u, rec, err := s.getUser(ctx, name)
	if err != nil {
		return User{}, fmt.Errorf("update %w", err)
	}
	changed := password != ""
	if role != "" && role != u.Role {
		if u.Role == Admin {
			if err := s.otherAdmin(ctx, name); err != nil {
				return User{}, fmt.Errorf("demote user %s: %w", name, err)
			}
		}
		u.Role, changed = role, true
	}
	if changed {
		if password != "" {
			u.Hash = HashPassword(password, s.params())
		}
		u.Gen = newGen()
		data, err := json.Marshal(u)
		if err != nil {
			return User{}, err
		}
		rec.Data = data
		if _, err := s.Store.Update(ctx, rec); err != nil {
			return User{}, fmt.Errorf("update user %s: %w", name, err)
		}
	}
	u.Hash, u.Gen = "", ""
	return u, nil
}

// otherAdmin returns ErrLastAdmin unless an admin other than name exists.
// The caller holds adminMu.
func (s *Service) otherAdmin(ctx context.Context, name string) error {
	us, err := s.ListUsers(ctx)
	if err != nil {
		return err
	}
	for _, u := range us {
		if u.Role == Admin && u.Name != name {
			return nil
		}
	}
	return ErrLastAdmin
}

// ListUsers returns every user, without hashes.
func (s *Service) ListUsers(ctx context.Context) ([]User, error) {
	var out []User
	tok := ""
	for {
		recs, next, err := s.Store.List(ctx, s.Cluster, resource.KindUser, store.ListOptions{PageToken: tok, Limit: store.MaxPageSize})
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		for _, r := range recs {
			var u User
			if err := json.Unmarshal(r.Data, &u); err != nil {
				return nil, fmt.Errorf("decode user %s: %w", r.Name, err)
			}
			u.Hash, u.Gen = "", ""
			out = append(out, u)
		}
		if next == "" {
			return out, nil
		}
		tok = next
	}
}

// DeleteUser removes a user, and with it every token it holds. Deleting
// the last admin is ErrLastAdmin.
func (s *Service) DeleteUser(ctx context.Context, name string) error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	u, rec, err := s.getUser(ctx, name)
	if err != nil {
		return fmt.Errorf("delete %w", err)
	}
	if u.Role == Admin {
		if err := s.otherAdmin(ctx, name); err != nil {
			return fmt.Errorf("delete user %s: %w", name, err)
		}
	}
	// At the version read: a concurrent promotion is not deleted unseen.
	if err := s.Store.Delete(ctx, s.userKey(name), rec.Version); err != nil {
		return fmt.Errorf("delete user %s: %w", name, err)
	}
	return nil
}

// EnsureAdmin creates the user "admin" with a random password if no user
// exists yet, writing the password to passwordFile (0600). It reports whether
// it created one.
func (s *Service) EnsureAdmin(ctx context.Context, passwordFile string) (bool, error) {
	recs, _, err := s.Store.List(ctx, s.Cluster, resource.KindUser, store.ListOptions{Limit: 1})
	if err != nil {
		return false, fmt.Errorf("check users: %w", err)
	}
	if len(recs) > 0 {
		return false, nil
	}
	b := make([]byte, 18)
	_, _ = rand.Read(b) // never fails since Go 1.24
	pw := base64.RawURLEncoding.EncodeToString(b)
	// Create the user first: when gateways of one cluster race, only the
	// winner writes a password file, so no file ever holds a useless one.
	if _, err := s.CreateUser(ctx, "admin", Admin, pw); err != nil {
		if errors.Is(err, store.ErrExists) {
			return false, nil
		}
		return false, err
	}
	if err := writeSecretFile(passwordFile, pw+"\n"); err != nil {
		// Without the file nobody could log in: undo, so the next start retries.
		// (Not DeleteUser: it is the last admin by design.)
		if derr := s.Store.Delete(ctx, s.userKey("admin"), 0); derr != nil {
			return false, errors.Join(err, derr)
		}
		return false, err
	}
	return true, nil
}

func writeSecretFile(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write admin password: %w", err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return fmt.Errorf("write admin password: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write admin password: %w", err)
	}
	return nil
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// tokenPrefix marks Autogate tokens so secret scanners can find leaked ones.
const tokenPrefix = "agt_"

// Login checks a password and issues a token.
func (s *Service) Login(ctx context.Context, name, password string) (token string, expires time.Time, err error) {
	if resource.ValidateName(name) != nil {
		return "", time.Time{}, ErrUnauthenticated
	}
	u, _, err := s.getUser(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		// Spend the same time as a real check so user names can't be probed.
		CheckPassword(password, HashPassword("x", s.params()))
		return "", time.Time{}, ErrUnauthenticated
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("login: %w", err)
	}
	if !CheckPassword(password, u.Hash) {
		return "", time.Time{}, ErrUnauthenticated
	}
	return s.issue(ctx, u, s.ttl())
}

// IssueToken makes a token for user, valid for ttl, bound to the user's
// current record. role must be the user's current role: a caller that
// believes otherwise gets an error rather than a token of another role.
func (s *Service) IssueToken(ctx context.Context, user string, role Role, ttl time.Duration) (string, time.Time, error) {
	u, _, err := s.getUser(ctx, user)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue token: %w", err)
	}
	if u.Role != role {
		return "", time.Time{}, fmt.Errorf("issue token: %w user %s has role %s, not %s", resource.ErrInvalid, user, u.Role, role)
	}
	return s.issue(ctx, u, ttl)
}

func (s *Service) issue(ctx context.Context, u User, ttl time.Duration) (string, time.Time, error) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails since Go 1.24
	tok := tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	now := s.Clock.Now().UTC()
	tr := tokenRecord{User: u.Name, Role: u.Role, Gen: u.Gen, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	data, err := json.Marshal(tr)
	if err != nil {
		return "", time.Time{}, err
	}
	key := store.Key{Cluster: s.Cluster, Kind: resource.KindToken, Name: hashToken(tok)}
	if _, err := s.Store.Create(ctx, store.Record{Key: key, Data: data, ExpiresAt: tr.ExpiresAt}); err != nil {
		return "", time.Time{}, fmt.Errorf("issue token: %w", err)
	}
	return tok, tr.ExpiresAt, nil
}

// Authenticate maps a bearer token to its principal: the token must be
// live and its user must still exist at the generation the token recorded;
// the role is the user's current one. It reads the store twice (the token,
// the user) and caches nothing, so a revocation holds on the next call.
func (s *Service) Authenticate(ctx context.Context, token string) (Principal, error) {
	if !strings.HasPrefix(token, tokenPrefix) || len(token) > 128 {
		return Principal{}, ErrUnauthenticated
	}
	h := hashToken(token)
	rec, err := s.Store.Get(ctx, store.Key{Cluster: s.Cluster, Kind: resource.KindToken, Name: h})
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	var tr tokenRecord
	if err := json.Unmarshal(rec.Data, &tr); err != nil {
		return Principal{}, fmt.Errorf("decode token: %w", err)
	}
	if !s.Clock.Now().Before(tr.ExpiresAt) {
		return Principal{}, ErrUnauthenticated
	}
	u, _, err := s.getUser(ctx, tr.User)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrUnauthenticated // deleted since
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(u.Gen), []byte(tr.Gen)) != 1 {
		return Principal{}, ErrUnauthenticated // recreated, or role or password changed since
	}
	return Principal{User: u.Name, Role: u.Role, TokenID: h[:12]}, nil
}

// Revoke invalidates a token at once.
func (s *Service) Revoke(ctx context.Context, token string) error {
	err := s.Store.Delete(ctx, store.Key{Cluster: s.Cluster, Kind: resource.KindToken, Name: hashToken(token)}, 0)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}
