package gitrepo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/autogate/autogate/internal/filelock"
	"github.com/autogate/autogate/internal/resource"
)

// Errors callers branch on.
var (
	// ErrUnknownReference means the repository was reachable but the
	// reference names no branch, tag or commit in it.
	ErrUnknownReference = errors.New("unknown reference")
	// ErrUnsafeTree means the tree at the commit holds a symlink that is
	// absolute or leads outside the tree (or an archive entry that does); the
	// tree is removed, not cached.
	ErrUnsafeTree = errors.New("unsafe tree")
)

// remoteHeadRef is where the mirror keeps the remote's HEAD, for an empty
// reference.
const remoteHeadRef = "refs/autogate/head"

// Cache checks repositories out under Dir, one tree per (repository URL,
// commit). It is safe for concurrent use, and several processes may share
// one directory.
type Cache struct {
	dir    string
	logger *slog.Logger
	locks  filelock.Keyed
	// Refresh is how long a resolved (URL, reference) → commit answer is
	// reused before the remote is asked again; 0 asks on every checkout. A
	// few seconds saves a git fetch per run under load, at the price of a
	// push taking that long to be seen.
	Refresh time.Duration
	// Now is the clock for Refresh; nil means time.Now.
	Now func() time.Time

	resolvedMu sync.Mutex
	resolved   map[string]resolution
}

type resolution struct {
	commit string
	at     time.Time
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// recent returns a commit resolved for key within Refresh whose tree exists.
func (c *Cache) recent(key, treesDir string) (string, bool) {
	if c.Refresh <= 0 {
		return "", false
	}
	c.resolvedMu.Lock()
	r, ok := c.resolved[key]
	c.resolvedMu.Unlock()
	if !ok || c.now().Sub(r.at) >= c.Refresh || !isDir(filepath.Join(treesDir, r.commit)) {
		return "", false
	}
	return r.commit, true
}

func (c *Cache) remember(key, commit string, at time.Time) {
	if c.Refresh <= 0 {
		return
	}
	c.resolvedMu.Lock()
	defer c.resolvedMu.Unlock()
	if c.resolved == nil {
		c.resolved = map[string]resolution{}
	}
	c.resolved[key] = resolution{commit: commit, at: at}
}

// New returns a cache rooted at dir, which is created on first use (mode
// 0700). A nil logger discards logs.
func New(dir string, logger *slog.Logger) *Cache {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Cache{dir: dir, logger: logger}
}

// Checkout resolves repo.Reference (empty = the remote's default branch/HEAD)
// to a full commit SHA and returns the directory of a tree at that commit
// plus the SHA. Trees are cached by commit and shared between runs: callers
// must treat the dir as read-only. credential (may be nil) is an HTTPS
// token/password for repo.URL; it is sent as HTTP Basic auth with the user
// name of the URL, or "x-access-token" when the URL names none.
//
// Errors: resource.ErrInvalid for a URL or reference Autogate refuses (leading
// '-', unsupported scheme, a credential for a non-https URL);
// ErrUnknownReference when the reference is not in the repository;
// ErrUnsafeTree when the tree holds an escaping symlink; otherwise a wrapped
// error carrying git's (scrubbed) message, e.g. for an unreachable URL or a
// directory that is not a git repository.
func (c *Cache) Checkout(ctx context.Context, repo resource.Repository, credential []byte) (dir, commit string, err error) {
	src, err := parseSource(repo.URL, credential)
	if err != nil {
		return "", "", err
	}
	ref := repo.Reference
	if strings.HasPrefix(ref, "-") || strings.ContainsAny(ref, "\x00\n\r ") {
		return "", "", fmt.Errorf("%w reference %q of repository %s: must not start with '-' or contain spaces or control characters", resource.ErrInvalid, ref, src.display)
	}
	if ref == "HEAD" {
		ref = ""
	}
	base, err := filepath.Abs(c.dir)
	if err != nil {
		return "", "", fmt.Errorf("git cache dir %q: %w", c.dir, err)
	}
	key := urlKey(repo.URL)
	treesDir := filepath.Join(base, "trees", key)

	// A full commit SHA cannot move: a cached tree for it is the answer
	// without asking the remote.
	if isFullSHA(ref) {
		if d := filepath.Join(treesDir, ref); isDir(d) {
			c.logger.DebugContext(ctx, "git tree cached", "repository", src.display, "commit", ref)
			return d, ref, nil
		}
	}

	refKey := key + "\x00" + ref
	if commit, ok := c.recent(refKey, treesDir); ok {
		return filepath.Join(treesDir, commit), commit, nil
	}
	asked := c.now()

	for _, d := range []string{base, filepath.Join(base, "home"), filepath.Join(base, "locks"), filepath.Join(base, "mirrors"), treesDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", "", fmt.Errorf("git cache: %w", err)
		}
	}
	unlock, err := c.lock(ctx, filepath.Join(base, "locks", key+".lock"), key)
	if err != nil {
		return "", "", fmt.Errorf("checkout %s: waiting for the repository lock: %w", src.display, err)
	}
	defer unlock()

	g := &git{home: filepath.Join(base, "home"), src: src}
	mirror, err := c.ensureMirror(ctx, g, filepath.Join(base, "mirrors"), key)
	if err != nil {
		return "", "", err
	}
	if err := fetch(ctx, g, mirror, ref); err != nil {
		return "", "", err
	}
	commit, err = resolve(ctx, g, mirror, ref)
	if err != nil {
		return "", "", err
	}
	dir = filepath.Join(treesDir, commit)
	if isDir(dir) {
		c.logger.DebugContext(ctx, "git tree cached", "repository", src.display, "reference", repo.Reference, "commit", commit)
		c.remember(refKey, commit, asked)
		return dir, commit, nil
	}
	if err := export(ctx, g, mirror, commit, treesDir); err != nil {
		return "", "", fmt.Errorf("checkout %s at %s: %w", src.display, commit, err)
	}
	c.remember(refKey, commit, asked)
	c.logger.InfoContext(ctx, "git tree exported", "repository", src.display, "reference", repo.Reference, "commit", commit)
	return dir, commit, nil
}

// lock serialises work on one URL: first among goroutines of this process,
// then among processes sharing the directory.
func (c *Cache) lock(ctx context.Context, path, key string) (func(), error) {
	unlockMem, err := c.locks.Lock(ctx, key)
	if err != nil {
		return nil, err
	}
	unlockFile, err := filelock.File(ctx, path)
	if err != nil {
		unlockMem()
		return nil, err
	}
	return func() {
		unlockFile()
		unlockMem()
	}, nil
}

// ensureMirror returns the bare mirror for key, creating it (by atomic
// rename of a fresh bare repository) when absent.
func (c *Cache) ensureMirror(ctx context.Context, g *git, mirrorsDir, key string) (string, error) {
	mirror := filepath.Join(mirrorsDir, key+".git")
	if isDir(mirror) {
		return mirror, nil
	}
	tmp, err := os.MkdirTemp(mirrorsDir, ".tmp-"+key[:12]+"-")
	if err != nil {
		return "", fmt.Errorf("git mirror: %w", err)
	}
	defer func() {
		// On success tmp was renamed away and this is a no-op.
		_ = os.RemoveAll(tmp) // best effort: a leftover temp dir is only litter
	}()
	if _, err := g.run(ctx, "", "init", "--bare", "--quiet", "--", tmp); err != nil {
		return "", fmt.Errorf("git mirror for %s: %w", g.src.display, err)
	}
	// info/attributes outranks the tree's .gitattributes: export the commit's
	// bytes as they are, whatever the tree asks for.
	attrs := "* -export-ignore -export-subst -text -eol -filter -ident -working-tree-encoding\n"
	if err := os.WriteFile(filepath.Join(tmp, "info", "attributes"), []byte(attrs), 0o600); err != nil {
		return "", fmt.Errorf("git mirror for %s: %w", g.src.display, err)
	}
	if err := os.Rename(tmp, mirror); err != nil && !isDir(mirror) {
		return "", fmt.Errorf("git mirror for %s: %w", g.src.display, err)
	}
	c.logger.DebugContext(ctx, "git mirror created", "repository", g.src.display)
	return mirror, nil
}

// fetch brings the mirror's branches and tags up to date, and the remote's
// HEAD too when ref is empty.
func fetch(ctx context.Context, g *git, mirror, ref string) error {
	args := []string{"fetch", "--quiet", "--prune", "--no-tags", "--no-write-fetch-head", "--", g.src.url,
		"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}
	if ref == "" {
		args = append(args, "+HEAD:"+remoteHeadRef)
	}
	if _, err := g.run(ctx, mirror, args...); err != nil {
		if g.src.local {
			return fmt.Errorf("fetch %s (a local repository must be a git repository with commits; plain directories are not accepted): %w", g.src.display, err)
		}
		return fmt.Errorf("fetch %s: %w", g.src.display, err)
	}
	return nil
}

// resolve turns ref into a full commit SHA. A full SHA that no branch or tag
// reaches is fetched on its own, which servers allow for reachable commits.
func resolve(ctx context.Context, g *git, mirror, ref string) (string, error) {
	rev := ref
	if rev == "" {
		rev = remoteHeadRef
	}
	revParse := func() (string, error) {
		out, err := g.run(ctx, mirror, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
		return strings.TrimSpace(string(out)), err
	}
	sha, err := revParse()
	if err != nil && isFullSHA(ref) {
		if _, ferr := g.run(ctx, mirror, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", g.src.url,
			ref+":refs/autogate/commits/"+ref); ferr == nil {
			sha, err = revParse()
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("resolve %q in %s: %w", ref, g.src.display, ctx.Err())
		}
		name := ref
		if name == "" {
			name = "HEAD"
		}
		return "", fmt.Errorf("%w %q in repository %s: no such branch, tag or commit", ErrUnknownReference, name, g.src.display)
	}
	if !isFullSHA(sha) {
		return "", fmt.Errorf("resolve %q in %s: git returned %q, not a commit SHA", ref, g.src.display, sha)
	}
	return sha, nil
}

// source is a repository URL checked for use on git's command line.
type source struct {
	url     string // as given, passed to git
	display string // for errors and logs: any password removed
	local   bool
	user    string // HTTP Basic user name for the credential
	cred    []byte
}

func parseSource(raw string, credential []byte) (source, error) {
	if raw == "" || strings.HasPrefix(raw, "-") || strings.ContainsAny(raw, "\x00\n\r") {
		return source{}, fmt.Errorf("%w repository url %q: empty, starts with '-' or holds control characters", resource.ErrInvalid, raw)
	}
	if strings.HasPrefix(raw, "/") {
		if len(credential) > 0 {
			return source{}, fmt.Errorf("%w repository url %s: a credential is only sent over https", resource.ErrInvalid, raw)
		}
		fi, err := os.Stat(raw)
		if err != nil {
			return source{}, fmt.Errorf("repository %s: %w", raw, err)
		}
		if !fi.IsDir() {
			return source{}, fmt.Errorf("repository %s: not a directory (want a git repository)", raw)
		}
		return source{url: raw, display: raw, local: true}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return source{}, fmt.Errorf("%w repository url: %v", resource.ErrInvalid, redactParseError(err, raw))
	}
	switch u.Scheme {
	case "https", "http", "ssh", "git", "file":
	default:
		return source{}, fmt.Errorf("%w repository url %s: scheme %q: want an absolute local path or an https, http, ssh, git or file URL", resource.ErrInvalid, u.Redacted(), u.Scheme)
	}
	if strings.HasPrefix(u.Host, "-") {
		return source{}, fmt.Errorf("%w repository url %s: host starts with '-'", resource.ErrInvalid, u.Redacted())
	}
	s := source{url: raw, display: u.Redacted(), user: "x-access-token", cred: credential}
	if len(credential) > 0 && u.Scheme != "https" {
		return source{}, fmt.Errorf("%w repository url %s: a credential is only sent over https", resource.ErrInvalid, s.display)
	}
	if u.User != nil && u.User.Username() != "" {
		s.user = u.User.Username()
	}
	return s, nil
}

// redactParseError drops the URL (which may hold a password) from a
// url.Parse error.
func redactParseError(err error, raw string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return errors.New(strings.ReplaceAll(err.Error(), raw, "<url>"))
}

func urlKey(u string) string {
	sum := sha256.Sum256([]byte(u))
	return hex.EncodeToString(sum[:])
}

// isFullSHA reports whether s is a full SHA-1 or SHA-256 object name in
// git's lower-case hex.
func isFullSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// errExists reports whether err means a rename target is already there.
func errExists(err error) bool {
	return errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY)
}
