package executor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/autogate/autogate/internal/resource"
)

// runPlan is what Run starts: one or more steps sharing an environment.
type runPlan struct {
	steps []step
	env   []string
}

type step struct {
	argv []string // argv[0] is an absolute path
	// prefix starts a failure reason, for types with several steps.
	prefix string
}

// plan builds the argv of each step and the environment for job's type,
// looking tools up in PathEnv and building a venv when needed.
func (e *Executor) plan(ctx context.Context, log *slog.Logger, job Job, rd *runDir) (runPlan, error) {
	svc := &job.Service
	// "./" keeps a file name starting with '-' from reading as an option.
	entry := "./" + filepath.ToSlash(svc.Filename)
	extraEnv := map[string]string{}
	var steps []step

	switch svc.Type {
	case resource.Executable:
		path := filepath.Join(rd.cwd, svc.Filename)
		fi, err := os.Stat(path)
		if err != nil {
			return runPlan{}, fmt.Errorf("%w: %w", ErrSetup, err)
		}
		if fi.Mode().Perm()&0o111 == 0 {
			return runPlan{}, fmt.Errorf("%w: %s is not executable: set its executable bit in the repository (git update-index --chmod=+x %s)", ErrSetup, svc.Filename, svc.Filename)
		}
		args, err := formatArgs(svc.Args, job.Inputs, job.SensitiveInputs)
		if err != nil {
			return runPlan{}, fmt.Errorf("%w: inputs: %w", ErrSetup, err)
		}
		steps = []step{{argv: append([]string{path}, args...)}}

	case resource.PythonScript:
		py, err := e.python(ctx)
		if err != nil {
			return runPlan{}, err
		}
		interp := py.exe
		if svc.Requirements != "" {
			venv, err := e.venv(ctx, log, py, filepath.Join(rd.cwd, svc.Requirements), rd.cwd)
			if err != nil {
				return runPlan{}, err
			}
			interp = filepath.Join(venv, "bin", "python")
		}
		args, err := formatArgs(svc.Args, job.Inputs, job.SensitiveInputs)
		if err != nil {
			return runPlan{}, fmt.Errorf("%w: inputs: %w", ErrSetup, err)
		}
		steps = []step{{argv: append([]string{interp, entry}, args...)}}

	case resource.AnsiblePlaybook:
		ap, err := lookPath("ansible-playbook", e.cfg.PathEnv)
		if err != nil {
			return runPlan{}, fmt.Errorf("%w: ansible-playbook not found: install ansible-core (apt-get install ansible-core)", ErrSetup)
		}
		inv, local, err := inventory(job.Inputs)
		if err != nil {
			return runPlan{}, fmt.Errorf("%w: %w", ErrSetup, err)
		}
		argv := []string{ap, "-i", inv}
		if local {
			argv = append(argv, "-c", "local")
		}
		argv = append(argv, entry, "--extra-vars", "@"+rd.inputsFile)
		steps = []step{{argv: argv}}
		tmp := filepath.Join(rd.dir, autogateDir, "ansible")
		extraEnv["ANSIBLE_LOCAL_TEMP"] = filepath.Join(tmp, "local")
		extraEnv["ANSIBLE_REMOTE_TEMP"] = filepath.Join(tmp, "remote")
		extraEnv["ANSIBLE_NOCOLOR"] = "1"
		extraEnv["ANSIBLE_HOST_KEY_CHECKING"] = "False"
		extraEnv["ANSIBLE_RETRY_FILES_ENABLED"] = "0"

	case resource.OpenTofuPlan:
		tofu, err := lookPath("tofu", e.cfg.PathEnv)
		if err != nil {
			return runPlan{}, fmt.Errorf("%w: tofu not found: install OpenTofu (https://opentofu.org/docs/intro/install/)", ErrSetup)
		}
		// The .tfvars.json suffix makes tofu parse the file as JSON.
		rel := filepath.Join(autogateDir, "inputs.tfvars.json")
		data, err := marshalInputs(job.Inputs)
		if err == nil {
			err = rd.writeFile(rel, data)
		}
		if err != nil {
			return runPlan{}, fmt.Errorf("%w: tofu variables file: %w", ErrSetup, err)
		}
		steps = []step{
			{argv: []string{tofu, "init", "-input=false", "-no-color"}, prefix: "tofu init: "},
			{argv: []string{tofu, "plan", "-input=false", "-no-color", "-out=plan.tfplan", "-var-file=" + filepath.Join(rd.dir, rel)}, prefix: "tofu plan: "},
		}
		if job.Apply {
			steps = append(steps, step{argv: []string{tofu, "apply", "-input=false", "-no-color", "plan.tfplan"}, prefix: "tofu apply: "})
		}
		extraEnv["TF_IN_AUTOMATION"] = "1"
		extraEnv["TF_INPUT"] = "0"

	default:
		return runPlan{}, fmt.Errorf("%w: service type %q is not supported", ErrSetup, svc.Type)
	}

	env, err := e.environ(job, rd, extraEnv)
	if err != nil {
		return runPlan{}, err
	}
	return runPlan{steps: steps, env: env}, nil
}

// environ is the service's whole environment; see the package doc for what
// is in it and what overrides what.
func (e *Executor) environ(job Job, rd *runDir, typeEnv map[string]string) ([]string, error) {
	m := map[string]string{
		"PATH": e.cfg.PathEnv,
		"HOME": rd.dir,
		"LANG": "C.UTF-8",
	}
	for k, v := range typeEnv {
		m[k] = v
	}
	for k, v := range job.Service.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("%w: environment variable %q: bad name or NUL in value", ErrSetup, k)
		}
		m[k] = v
	}
	for _, b := range job.Service.Secrets {
		if b.Env != "" {
			m[b.Env] = string(job.Secrets[b.Secret])
		}
	}
	for k, v := range rd.secretFiles {
		m[k] = v
	}
	m["AUTOGATE_EXECUTION_ID"] = job.ExecutionID
	m["AUTOGATE_INPUTS_FILE"] = rd.inputsFile

	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env, nil
}

// formatArgs is the argv tail of python-script and executable services:
// args first, then for each input in key order "--key" and its value.
// Strings are passed as they are; everything else (numbers, booleans, null,
// arrays, objects) as JSON, without HTML escaping. The inputs named in omit
// (the sensitive ones) are left out: argv is world-readable.
func formatArgs(args []string, inputs map[string]any, omit []string) ([]string, error) {
	keys := make([]string, 0, len(inputs))
	for k := range inputs {
		if !slices.Contains(omit, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]string, 0, len(args)+2*len(keys))
	out = append(out, args...)
	for _, k := range keys {
		var v string
		if s, ok := inputs[k].(string); ok {
			v = s
		} else {
			b, err := encodeJSON(inputs[k])
			if err != nil {
				return nil, fmt.Errorf("input %q: %w", k, err)
			}
			v = string(b)
		}
		out = append(out, "--"+k, v)
	}
	return out, nil
}

// inventory is ansible-playbook's -i value from the "inventory" input (a
// comma-separated string or a list of host names), in the "h1,h2," form
// that ansible reads as a host list; default "localhost,". local reports
// whether the inventory is exactly localhost, which then runs with -c local.
func inventory(inputs map[string]any) (inv string, local bool, err error) {
	v, ok := inputs["inventory"]
	if !ok {
		return "localhost,", true, nil
	}
	var raw []string
	switch x := v.(type) {
	case string:
		raw = strings.Split(x, ",")
	case []string:
		raw = x
	case []any:
		for _, h := range x {
			s, ok := h.(string)
			if !ok {
				return "", false, fmt.Errorf("input inventory: host %v is not a string", h)
			}
			raw = append(raw, s)
		}
	default:
		return "", false, fmt.Errorf("input inventory: want a comma-separated string or a list of hosts, got %T", v)
	}
	var hosts []string
	for _, h := range raw {
		if h = strings.TrimSpace(h); h != "" {
			if strings.Contains(h, ",") {
				return "", false, fmt.Errorf("input inventory: host %q contains a comma", h)
			}
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return "", false, fmt.Errorf("input inventory: no hosts")
	}
	return strings.Join(hosts, ",") + ",", len(hosts) == 1 && hosts[0] == "localhost", nil
}

// lookPath finds an executable named name in the PATH list pathEnv (not the
// host's PATH). A name with a slash is checked as it is. Empty PATH entries
// are ignored rather than meaning the current directory.
func lookPath(name, pathEnv string) (string, error) {
	if strings.Contains(name, "/") {
		if isExecutable(name) {
			return filepath.Abs(name)
		}
		return "", fmt.Errorf("%s: %w", name, os.ErrNotExist)
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, os.ErrNotExist)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
