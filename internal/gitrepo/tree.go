package gitrepo

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxLinkHops bounds symlink chains followed while checking a link, like the
// kernel's ELOOP limit.
const maxLinkHops = 40

// export writes the tree of commit into treesDir/commit: git archive's tar
// stream is unpacked into a temp dir next to it, checked, and renamed into
// place. A tree published meanwhile by another process is kept.
func export(ctx context.Context, g *git, mirror, commit, treesDir string) (err error) {
	staging, err := os.MkdirTemp(treesDir, ".tmp-"+commit[:12]+"-")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(staging) // best effort: a leftover temp dir is only litter
		}
	}()
	if err := os.Chmod(staging, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := archive(ctx, g, mirror, commit, staging); err != nil {
		return err
	}
	if err := checkSymlinks(staging); err != nil {
		return err
	}
	dest := filepath.Join(treesDir, commit)
	if err := os.Rename(staging, dest); err != nil {
		if errExists(err) && isDir(dest) {
			return os.RemoveAll(staging)
		}
		return fmt.Errorf("export: publish tree: %w", err)
	}
	return nil
}

// archive streams `git archive <commit>` into dir.
func archive(ctx context.Context, g *git, mirror, commit, dir string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer root.Close()

	stderr := &limitedBuffer{max: maxStderr}
	cmd := g.command(ctx, mirror, "archive", "--format=tar", commit)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return g.wrap("archive", "", err)
	}
	xerr := extractTar(out, root)
	if xerr != nil {
		cancel() // stop git; its error is then noise
	}
	werr := cmd.Wait()
	if xerr != nil {
		return xerr
	}
	if werr != nil {
		return g.wrap("archive", stderr.String(), werr)
	}
	return nil
}

// extractTar unpacks directories, regular files and symlinks from r into
// root. Through os.Root no entry can be written outside it, whatever the
// archive holds; entry names that are not local paths are refused outright.
func extractTar(r io.Reader, root *os.Root) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("export: reading archive: %w", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name := path.Clean(strings.TrimSuffix(hdr.Name, "/"))
		if !filepath.IsLocal(name) {
			return fmt.Errorf("%w: archive entry %q is not a path inside the tree", ErrUnsafeTree, hdr.Name)
		}
		if dir := path.Dir(name); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("export %s: %w", name, err)
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, 0o755)
		case tar.TypeReg:
			err = writeFile(root, name, hdr.Mode, tr)
		case tar.TypeSymlink:
			err = root.Symlink(hdr.Linkname, name)
		default:
			// git archive emits nothing else; skip rather than guess.
		}
		if err != nil {
			return fmt.Errorf("export %s: %w", name, err)
		}
	}
}

func writeFile(root *os.Root, name string, mode int64, r io.Reader) error {
	perm := os.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		_ = f.Close() // the copy error is the one to report
		return err
	}
	return f.Close()
}

// checkSymlinks returns an error wrapping ErrUnsafeTree naming the first
// symlink under root whose target is absolute or resolves outside root.
func checkSymlinks(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if why := linkEscapes(root, rel, target); why != "" {
			return fmt.Errorf("%w: symlink %s -> %s %s", ErrUnsafeTree, filepath.ToSlash(rel), target, why)
		}
		return nil
	})
}

// linkEscapes follows the symlink at rel (relative to root, whose parent
// directories are real directories) with target the way the kernel would,
// including through other symlinks of the tree, and says why it leaves
// root, or "" when it stays inside. Components that do not exist are taken
// literally: nothing below them can be a symlink.
func linkEscapes(root, rel, target string) string {
	if filepath.IsAbs(target) {
		return "is absolute"
	}
	var at []string // resolved position, relative to root
	if dir := filepath.Dir(rel); dir != "." {
		at = strings.Split(dir, string(filepath.Separator))
	}
	todo := strings.Split(target, "/")
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(at) == 0 {
				return "leaves the tree"
			}
			at = at[:len(at)-1]
			continue
		}
		next := append(at[:len(at):len(at)], c)
		p := filepath.Join(append([]string{root}, next...)...)
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			at = next
			continue
		}
		if hops++; hops > maxLinkHops {
			return "is a symlink loop"
		}
		t, err := os.Readlink(p)
		if err != nil {
			return "cannot be read: " + err.Error()
		}
		if filepath.IsAbs(t) {
			return "leads through an absolute symlink " + filepath.ToSlash(filepath.Join(next...))
		}
		todo = append(strings.Split(t, "/"), todo...)
	}
	return ""
}
