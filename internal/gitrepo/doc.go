// Package gitrepo checks out the code of services: it resolves a repository's
// reference (branch, tag, commit, or the remote's default branch) to a full
// commit and hands back a directory holding the tree at that commit.
//
// Layout under the cache directory:
//
//	home/                  HOME for git and ssh (known_hosts, keys, .gitconfig go here)
//	locks/<urlhash>.lock   cross-process lock for one repository URL
//	mirrors/<urlhash>.git  one bare mirror per URL, fetched on every Checkout
//	trees/<urlhash>/<sha>  one exported tree per commit, shared between runs
//
// where urlhash is the hex SHA-256 of the repository URL.
//
// Guarantees:
//   - Trees are keyed by commit, so a tree never changes once published. A
//     branch that moved is seen on the next Checkout because the mirror is
//     fetched every time (except when the reference is already a full commit
//     SHA whose tree is cached: a commit cannot move).
//   - A tree is published by an atomic rename of a fully exported directory:
//     readers never see a partial tree, and several goroutines or processes
//     sharing one cache directory serialise on a per-URL lock (an in-process
//     mutex plus flock(2)) and tolerate a tree another process published.
//   - A tree whose symlinks are absolute or resolve outside the tree is
//     rejected with ErrUnsafeTree and never published.
//   - The exported tree is the commit's content byte for byte: the
//     export-ignore, export-subst, text/eol, filter and ident attributes are
//     neutralised, so .gitattributes cannot hide or rewrite files. Submodules
//     are not checked out.
//   - git runs without a shell and with a minimal environment: PATH, LC_ALL=C,
//     HOME under the cache directory, the host's proxy and CA variables, no
//     inherited GIT_* variables, no terminal prompts, and only the file, git,
//     http, https and ssh transports. A credential travels to git only in its
//     environment (as an HTTP Authorization header) and is scrubbed from every
//     error; it never appears in argv, logs or files.
//   - References and URLs starting with '-' are rejected (argument injection).
//
// It does not guarantee that a tree stays on disk forever (nothing prunes the
// cache yet, but a future janitor may remove trees no run uses), nor that
// callers cannot modify a tree: callers must treat it as read-only.
//
// Usage:
//
//	cache := gitrepo.New("/var/lib/autogate/git", logger)
//	dir, commit, err := cache.Checkout(ctx, repo, credential)
//	if errors.Is(err, gitrepo.ErrUnknownReference) { ... }
package gitrepo
