package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/autogate/autogate/internal/resource"
)

// Names the executor reserves at the top of the run directory. A source
// tree's own entries with these names are not copied.
const (
	autogateDir = ".autogate" // inputs files, tool temp dirs
	secretsDir  = ".secrets"  // secret files
)

// runDir is one run's private directory, a copy of the source tree.
type runDir struct {
	dir  string   // absolute path
	root *os.Root // dir, for operations that must not leave it
	// skipped are the source's symlinks that were not copied because they
	// do not resolve inside the source: path → target.
	skipped map[string]string
	// cwd is dir/Service.WorkingDir.
	cwd string
	// inputsFile is the 0600 JSON file holding the inputs.
	inputsFile string
	// secretFiles maps env var name → path of a secret file.
	secretFiles map[string]string
}

// workRoot is where a run of type t gets its directory.
func (e *Executor) workRoot(t resource.ServiceType) string {
	if t == resource.OpenTofuPlan && e.cfg.DiskWorkRoot != "" {
		return e.cfg.DiskWorkRoot
	}
	return e.cfg.WorkRoot
}

// prepare creates the run directory, copies the source into it and writes
// the inputs and secret files. On error nothing is left behind.
func (e *Executor) prepare(ctx context.Context, log *slog.Logger, job Job) (_ *runDir, err error) {
	svc := &job.Service
	if _, err := resource.ParseServiceType(string(svc.Type)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSetup, err)
	}
	if svc.Filename == "" && svc.Type != resource.OpenTofuPlan {
		return nil, fmt.Errorf("%w: service %s has no filename", ErrSetup, svc.Name)
	}
	for _, p := range [][2]string{{"workingDir", svc.WorkingDir}, {"filename", svc.Filename}, {"requirements", svc.Requirements}} {
		if err := resource.ValidateRelPath(p[0], p[1]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSetup, err)
		}
	}
	if job.SourceDir == "" {
		return nil, fmt.Errorf("%w: no source directory", ErrSetup)
	}
	src, err := filepath.EvalSymlinks(job.SourceDir)
	if err == nil {
		src, err = filepath.Abs(src)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: source directory: %w", ErrSetup, err)
	}
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w: source directory %s is not a directory", ErrSetup, job.SourceDir)
	}

	dir, err := os.MkdirTemp(e.workRoot(svc.Type), "run-"+safeName(job.ExecutionID)+"-")
	if err != nil {
		return nil, fmt.Errorf("%w: run directory: %w", ErrSetup, err)
	}
	rd := &runDir{dir: dir, skipped: map[string]string{}, secretFiles: map[string]string{}}
	defer func() {
		if err != nil {
			rd.remove(ctx, log)
		}
	}()
	if rd.root, err = os.OpenRoot(dir); err != nil {
		return nil, fmt.Errorf("%w: run directory: %w", ErrSetup, err)
	}
	if err := rd.copyFrom(ctx, log, src); err != nil {
		return nil, fmt.Errorf("%w: copying %s: %w", ErrSetup, job.SourceDir, err)
	}
	if err := rd.root.Mkdir(autogateDir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSetup, err)
	}

	// Paths the service names must resolve inside the run directory.
	wd := svc.WorkingDir
	if wd == "" {
		wd = "."
	}
	if err := rd.check("working directory", wd, fs.ModeDir); err != nil {
		return nil, err
	}
	rd.cwd = filepath.Join(dir, wd)
	if svc.Filename != "" {
		if err := rd.check("filename", filepath.Join(wd, svc.Filename), 0); err != nil {
			return nil, err
		}
	}
	if svc.Requirements != "" {
		if err := rd.check("requirements", filepath.Join(wd, svc.Requirements), 0); err != nil {
			return nil, err
		}
	}

	inputs, err := marshalInputs(job.Inputs)
	if err != nil {
		return nil, fmt.Errorf("%w: inputs: %w", ErrSetup, err)
	}
	rd.inputsFile = filepath.Join(dir, autogateDir, "inputs.json")
	if err := rd.writeFile(filepath.Join(autogateDir, "inputs.json"), inputs); err != nil {
		return nil, fmt.Errorf("%w: inputs file: %w", ErrSetup, err)
	}
	if err := rd.writeSecrets(svc.Secrets, job.Secrets); err != nil {
		return nil, err
	}
	return rd, nil
}

// check verifies that rel resolves inside the run directory (following
// symlinks, none of which may leave it) to a directory (want fs.ModeDir) or
// a regular file (want 0).
func (rd *runDir) check(what, rel string, want fs.FileMode) error {
	fi, err := rd.root.Stat(rel)
	if err != nil {
		for p := rel; p != "." && p != "/"; p = filepath.Dir(p) {
			if target, ok := rd.skipped[p]; ok {
				return fmt.Errorf("%w: %s %q: symlink %s -> %s leads outside the source tree, so it was not copied into the run directory", ErrSetup, what, rel, p, target)
			}
		}
		return fmt.Errorf("%w: %s %q must resolve inside the run directory: %w", ErrSetup, what, rel, err)
	}
	switch {
	case want == fs.ModeDir && !fi.IsDir():
		return fmt.Errorf("%w: %s %q is not a directory", ErrSetup, what, rel)
	case want == 0 && !fi.Mode().IsRegular():
		return fmt.Errorf("%w: %s %q is not a regular file", ErrSetup, what, rel)
	}
	return nil
}

// copyFrom copies src's regular files, directories and inward symlinks into
// the run directory. Symlinks are copied as links (same target) when they
// resolve, inside src, to something that exists; the others are recorded
// in skipped and logged. Special files are skipped.
func (rd *runDir) copyFrom(ctx context.Context, log *slog.Logger, src string) error {
	srcRoot, err := os.OpenRoot(src)
	if err != nil {
		return err
	}
	defer srcRoot.Close()
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		if rel == autogateDir || rel == secretsDir {
			log.WarnContext(ctx, "source entry shadows a reserved name, not copied", "path", rel)
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch t := d.Type(); {
		case t.IsDir():
			return rd.root.Mkdir(rel, 0o755)
		case t.IsRegular():
			return copyFile(rd.root, rel, p)
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if _, err := srcRoot.Stat(rel); err != nil {
				rd.skipped[rel] = target
				log.WarnContext(ctx, "symlink not copied: it does not resolve inside the source", "path", rel, "target", target)
				return nil
			}
			return rd.root.Symlink(target, rel)
		default:
			log.WarnContext(ctx, "special file not copied", "path", rel)
			return nil
		}
	})
}

func copyFile(dst *os.Root, rel, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	perm := os.FileMode(0o644)
	if fi.Mode()&0o111 != 0 {
		perm = 0o755
	}
	out, err := dst.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close() // the copy error is the one to report
		return err
	}
	return out.Close()
}

// writeFile creates rel (which must not exist) with mode 0600.
func (rd *runDir) writeFile(rel string, data []byte) error {
	f, err := rd.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close() // the write error is the one to report
		return err
	}
	return f.Close()
}

// writeSecrets writes the file-bound secrets to .secrets/<File> (0600) and
// records their paths; environment bindings are handled by environ.
func (rd *runDir) writeSecrets(bindings []resource.SecretBinding, values map[string][]byte) error {
	for _, b := range bindings {
		v, ok := values[b.Secret]
		if !ok {
			return fmt.Errorf("%w: secret %s is bound by the service but was not provided", ErrSetup, b.Secret)
		}
		if b.Env != "" && bytes.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("%w: secret %s holds a NUL byte and cannot be an environment variable: bind it as a file", ErrSetup, b.Secret)
		}
		if b.File == "" {
			continue
		}
		if err := resource.ValidateName(b.File); err != nil {
			return fmt.Errorf("%w: secret %s: file: %w", ErrSetup, b.Secret, err)
		}
		if err := rd.root.Mkdir(secretsDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: secrets directory: %w", ErrSetup, err)
		}
		rel := filepath.Join(secretsDir, b.File)
		if err := rd.writeFile(rel, v); err != nil {
			return fmt.Errorf("%w: secret %s: file %s: %w", ErrSetup, b.Secret, b.File, err)
		}
		rd.secretFiles[secretFileVar(b.Secret)] = filepath.Join(rd.dir, rel)
	}
	return nil
}

// secretFileVar is AUTOGATE_SECRET_FILE_<NAME>: the secret name upper-cased,
// with '-', '/' and '.' turned into '_'.
func secretFileVar(name string) string {
	return "AUTOGATE_SECRET_FILE_" + strings.NewReplacer("-", "_", "/", "_", ".", "_").Replace(strings.ToUpper(name))
}

// remove deletes the run directory, making directories the service made
// read-only writable again if a first attempt fails.
func (rd *runDir) remove(ctx context.Context, log *slog.Logger) {
	if rd.root != nil {
		_ = rd.root.Close() // read-only handle
	}
	if err := os.RemoveAll(rd.dir); err == nil {
		return
	}
	_ = filepath.WalkDir(rd.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700) // best effort; RemoveAll below reports
		}
		return nil
	})
	if err := os.RemoveAll(rd.dir); err != nil {
		log.ErrorContext(ctx, "removing run directory", "run_dir", rd.dir, "error", err)
	}
}

// safeName keeps the characters of s that are harmless in a file name.
func safeName(s string) string {
	b := make([]byte, 0, min(len(s), 40))
	for i := 0; i < len(s) && len(b) < 40; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b = append(b, c)
		}
	}
	return string(b)
}

// marshalInputs encodes inputs as a JSON object, without HTML escaping.
func marshalInputs(inputs map[string]any) ([]byte, error) {
	if inputs == nil {
		inputs = map[string]any{}
	}
	return encodeJSON(inputs)
}

func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
