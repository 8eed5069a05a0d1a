package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

func (a *App) createCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "create", Short: "Create a resource"}
	cmd.AddCommand(a.createRepositoryCmd(), a.createDecoratorCmd(), a.createServiceCmd(), a.createSecretCmd(), a.createUserCmd())
	return cmd
}

func (a *App) createAndPrint(cmd *cobra.Command, o resource.Object) error {
	cl, _, err := a.client()
	if err != nil {
		return err
	}
	if err := cl.Create(cmd.Context(), o); err != nil {
		return err
	}
	a.warn(o)
	if a.output != "table" {
		return printValue(a.Out, a.output, o)
	}
	fmt.Fprintf(a.Out, "%s/%s created (version %d)\n", resource.KindOf(o), o.GetMeta().Name, o.GetMeta().Version)
	return nil
}

// warn prints to stderr what the server warned about in its answer.
func (a *App) warn(o resource.Object) { warn(a.Err, o) }

func warn(w io.Writer, o resource.Object) {
	if s, ok := o.(*resource.Secret); ok && s.Warning != "" {
		fmt.Fprintln(w, "warning:", s.Warning)
	}
}

func (a *App) createRepositoryCmd() *cobra.Command {
	var r resource.Repository
	cmd := &cobra.Command{
		Use:     "repository NAME --url URL|PATH [--reference REF]",
		Aliases: []string{"repo"},
		Short:   "Create a git repository that services take their code from",
		Example: "  autogate create repository demo --url https://git.example.com/netops/scripts.git --reference main",
		Args:    exactArgs(1, "a repository name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r.Name = args[0]
			if r.URL != "" && !strings.Contains(r.URL, "://") && !filepath.IsAbs(r.URL) {
				if abs, err := filepath.Abs(r.URL); err == nil {
					r.URL = abs
				}
			}
			return a.createAndPrint(cmd, &r)
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.URL, "url", "", "git URL, or a local path to a git repository on the gateway's host")
	f.StringVar(&r.Reference, "reference", "", "branch, tag or commit (default: the remote's HEAD)")
	f.StringVar(&r.CredentialSecret, "credential-secret", "", "secret holding an HTTPS token for the URL")
	f.StringVar(&r.Description, "description", "", "free text")
	return cmd
}

func (a *App) createDecoratorCmd() *cobra.Command {
	var schemaFile, desc string
	cmd := &cobra.Command{
		Use:     "decorator NAME --schema FILE",
		Short:   "Create a decorator: a JSON Schema (draft 2020-12) that inputs must satisfy",
		Long:    "Create a decorator from a JSON or YAML schema file. Properties marked \"writeOnly\": true are\ntreated as sensitive and redacted from recorded inputs and output.",
		Example: "  autogate create decorator ping-input --schema ping.schema.json",
		Args:    exactArgs(1, "a decorator name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if schemaFile == "" {
				return usageErr{errors.New("--schema is required")}
			}
			raw, err := os.ReadFile(schemaFile)
			if err != nil {
				return usageErr{fmt.Errorf("schema: %w", err)}
			}
			var schema map[string]any
			if err := yaml.Unmarshal(raw, &schema); err != nil {
				return usageErr{fmt.Errorf("schema %s: %w", schemaFile, err)}
			}
			return a.createAndPrint(cmd, &resource.Decorator{Meta: resource.Meta{Name: args[0]}, Schema: schema, Description: desc})
		},
	}
	cmd.Flags().StringVar(&schemaFile, "schema", "", "JSON Schema file (JSON or YAML)")
	cmd.Flags().StringVar(&desc, "description", "", "free text")
	return cmd
}

func (a *App) createServiceCmd() *cobra.Command {
	var s resource.Service
	var env, secretEnv, secretFile []string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "service TYPE NAME --repository REPO --filename FILE [flags]",
		Short: "Create a service (python-script, ansible-playbook, opentofu-plan or executable)",
		Example: `  autogate create service python-script ping --repository demo --working-dir ping \
      --filename main.py --decorator ping-input --requirements requirements.txt
  autogate create service executable backup --repository demo --filename backup.sh \
      --secret-env router-pass=ROUTER_PASSWORD --timeout 10m`,
		Args: exactArgs(2, "a service type and a name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := resource.ParseServiceType(args[0])
			if err != nil {
				return usageErr{err}
			}
			s.Type, s.Name = t, args[1]
			s.TimeoutSeconds = int(timeout.Seconds())
			if s.Env, err = keyValues(env, "--env"); err != nil {
				return err
			}
			bindings, err := keyValues(secretEnv, "--secret-env")
			if err != nil {
				return err
			}
			for _, k := range sortedKeys(bindings) {
				s.Secrets = append(s.Secrets, resource.SecretBinding{Secret: k, Env: bindings[k]})
			}
			files, err := keyValues(secretFile, "--secret-file")
			if err != nil {
				return err
			}
			for _, k := range sortedKeys(files) {
				s.Secrets = append(s.Secrets, resource.SecretBinding{Secret: k, File: files[k]})
			}
			return a.createAndPrint(cmd, &s)
		},
	}
	f := cmd.Flags()
	f.StringVar(&s.Repository, "repository", "", "repository holding the code")
	f.StringVar(&s.WorkingDir, "working-dir", "", "directory inside the repository to run in")
	f.StringVar(&s.Filename, "filename", "", "entry file, relative to the working dir")
	f.StringVar(&s.Decorator, "decorator", "", "decorator validating the inputs")
	f.StringVar(&s.Requirements, "requirements", "", "python-script: requirements file relative to the working dir")
	f.StringArrayVar(&s.Args, "arg", nil, "argument passed before the inputs (repeatable)")
	f.StringArrayVar(&env, "env", nil, "environment variable KEY=VALUE (repeatable)")
	f.StringArrayVar(&secretEnv, "secret-env", nil, "hand secret SECRET to the service as env var: SECRET=VAR (repeatable)")
	f.StringArrayVar(&secretFile, "secret-file", nil, "hand secret SECRET to the service as a 0600 file .secrets/FILENAME in its run directory, path in $AUTOGATE_SECRET_FILE_<SECRET> (upper case, '-' and '.' as '_'): SECRET=FILENAME (repeatable)")
	f.DurationVar(&timeout, "timeout", 0, "run timeout (default 5m, max 12h)")
	f.BoolVar(&s.Retryable, "retryable", false, "safe to start again if its runner dies mid-run")
	f.StringVar(&s.Description, "description", "", "free text")
	return cmd
}

func (a *App) createSecretCmd() *cobra.Command {
	var literal, file, desc string
	var stdin bool
	cmd := &cobra.Command{
		Use:   "secret NAME (--from-file FILE | --from-stdin | --from-literal VALUE)",
		Short: "Create a secret (stored encrypted; never shown again)",
		Long: `Create a secret. Prefer --from-file or --from-stdin: a --from-literal value lands in your
shell history and the process list.`,
		Args: exactArgs(1, "a secret name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := a.secretValue(cmd, literal, file, stdin)
			if err != nil {
				return err
			}
			return a.createAndPrint(cmd, &resource.Secret{Meta: resource.Meta{Name: args[0]}, Value: v, Description: desc})
		},
	}
	f := cmd.Flags()
	f.StringVar(&literal, "from-literal", "", "the value itself")
	f.StringVar(&file, "from-file", "", "read the value from a file")
	f.BoolVar(&stdin, "from-stdin", false, "read the value from stdin")
	f.StringVar(&desc, "description", "", "free text")
	return cmd
}

func (a *App) secretValue(cmd *cobra.Command, literal, file string, stdin bool) ([]byte, error) {
	n := 0
	for _, set := range []bool{cmd.Flags().Changed("from-literal"), file != "", stdin} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, usageErr{errors.New("give exactly one of --from-literal, --from-file, --from-stdin")}
	}
	switch {
	case file != "":
		v, err := os.ReadFile(file)
		if err != nil {
			return nil, usageErr{fmt.Errorf("secret file: %w", err)}
		}
		return v, nil
	case stdin:
		v, err := io.ReadAll(io.LimitReader(a.In, resource.MaxSecretBytes+1))
		if err != nil {
			return nil, fmt.Errorf("read secret from stdin: %w", err)
		}
		return bytes.TrimRight(v, "\r\n"), nil
	}
	return []byte(literal), nil
}

func (a *App) createUserCmd() *cobra.Command {
	var role, passFile string
	var passStdin bool
	cmd := &cobra.Command{
		Use:   "user NAME --role admin|operator|viewer (--password-file F | --password-stdin)",
		Short: "Create a user (admin only)",
		Args:  exactArgs(1, "a user name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := a.readPassword(passFile, passStdin)
			if err != nil {
				return err
			}
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			u, err := cl.CreateUser(cmd.Context(), wire.CreateUserRequest{Name: args[0], Role: role, Password: pw})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "user/%s created (%s)\n", u.Name, u.Role)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "viewer", "admin, operator (run and read) or viewer (read)")
	cmd.Flags().StringVar(&passFile, "password-file", "", "read the password from this file")
	cmd.Flags().BoolVar(&passStdin, "password-stdin", false, "read the password from stdin")
	return cmd
}

func (a *App) updateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "update", Short: "Change a user"}
	cmd.AddCommand(a.updateUserCmd())
	return cmd
}

func (a *App) updateUserCmd() *cobra.Command {
	var role, passFile string
	var passStdin bool
	cmd := &cobra.Command{
		Use:   "user NAME [--role admin|operator|viewer] [--password-file F | --password-stdin]",
		Short: "Change a user's role or password (admin only); its tokens stop working at once",
		Args:  exactArgs(1, "a user name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var pw string
			if passFile != "" || passStdin {
				var err error
				if pw, err = a.readPassword(passFile, passStdin); err != nil {
					return err
				}
			}
			if role == "" && pw == "" {
				return usageErr{errors.New("nothing to change: give --role, --password-file or --password-stdin")}
			}
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			u, err := cl.UpdateUser(cmd.Context(), args[0], wire.UpdateUserRequest{Role: role, Password: pw})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "user/%s updated (%s)\n", u.Name, u.Role)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "the new role: admin, operator or viewer")
	cmd.Flags().StringVar(&passFile, "password-file", "", "read the new password from this file")
	cmd.Flags().BoolVar(&passStdin, "password-stdin", false, "read the new password from stdin")
	return cmd
}

func keyValues(pairs []string, flag string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usageErr{fmt.Errorf("%s %q: want KEY=VALUE", flag, p)}
		}
		out[k] = v
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func parseKind(s string) (resource.Kind, error) {
	k, err := resource.ParseKind(s)
	if err != nil {
		return "", usageErr{err}
	}
	return k, nil
}

// kindClient parses a kind argument and builds the API client, the first
// two steps of every KIND NAME command.
func (a *App) kindClient(arg string) (resource.Kind, *client.Client, error) {
	k, err := parseKind(arg)
	if err != nil {
		return "", nil, err
	}
	cl, _, err := a.client()
	return k, cl, err
}

func (a *App) getCmd() *cobra.Command {
	var status, service string
	var limit int
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "List resources, or show one (services, decorators, repositories, secrets, executions, nodes, users, clusters)",
		Example: `  autogate get services
  autogate get executions --status lost -o json
  autogate get service ping -o yaml
  autogate --context manager get clusters
  autogate --context manager get services --cluster eu-1`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageErr{errors.New("want KIND [NAME]")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "clusters" || args[0] == "cluster" {
				return a.getClusters(cmd, args[1:])
			}
			k, err := parseKind(args[0])
			if err != nil {
				return err
			}
			if status != "" {
				if _, err := execution.ParseStatus(status); err != nil {
					return usageErr{err}
				}
			}
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			switch k {
			case resource.KindExecution:
				var es []*wire.Execution
				if len(args) == 2 {
					e, err := cl.Execution(ctx, args[1])
					if err != nil {
						return err
					}
					es = []*wire.Execution{e}
				} else if es, err = cl.Executions(ctx, client.ExecutionFilter{Status: status, Service: service, Limit: limit}); err != nil {
					return err
				}
				if a.output != "table" {
					if len(args) == 2 {
						return printValue(a.Out, a.output, es[0])
					}
					return printValue(a.Out, a.output, es)
				}
				return executionTable(a.Out, es)
			case resource.KindNode:
				nodes, err := cl.Nodes(ctx)
				if err != nil {
					return err
				}
				if a.output != "table" {
					return printValue(a.Out, a.output, nodes)
				}
				var rows [][]string
				for _, n := range nodes {
					rows = append(rows, []string{n.ID, n.Kind, n.Role, fmt.Sprint(n.Epoch), n.Address,
						fmt.Sprintf("%d/%d", n.Load, n.Capacity), ago(n.LastHeartbeat)})
				}
				return table(a.Out, []string{"NODE", "KIND", "ROLE", "EPOCH", "ADDRESS", "LOAD", "HEARTBEAT"}, rows)
			case resource.KindUser:
				us, err := cl.Users(ctx)
				if err != nil {
					return err
				}
				if a.output != "table" {
					return printValue(a.Out, a.output, us)
				}
				var rows [][]string
				for _, u := range us {
					rows = append(rows, []string{u.Name, u.Role, ago(u.CreatedAt)})
				}
				return table(a.Out, []string{"NAME", "ROLE", "AGE"}, rows)
			}
			var objs []resource.Object
			if len(args) == 2 {
				o, err := cl.Get(ctx, k, args[1])
				if err != nil {
					return err
				}
				if a.output != "table" {
					return printValue(a.Out, a.output, o)
				}
				objs = []resource.Object{o}
			} else {
				raws, err := cl.List(ctx, k)
				if err != nil {
					return err
				}
				for _, raw := range raws {
					o, _ := resource.New(k) // k was validated above
					if err := json.Unmarshal(raw, o); err != nil {
						return fmt.Errorf("decode %s: %w", k, err)
					}
					objs = append(objs, o)
				}
				if a.output != "table" {
					return printValue(a.Out, a.output, objs)
				}
			}
			return resourceTable(a.Out, k, objs)
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "executions: only this status (queued, running, succeeded, failed, timed_out, canceled, lost)")
	cmd.Flags().StringVar(&service, "service", "", "executions: only this service")
	cmd.Flags().IntVar(&limit, "limit", 100, "executions: at most this many, newest first")
	return cmd
}

// getClusters lists a Gateway Manager's clusters (or shows one).
func (a *App) getClusters(cmd *cobra.Command, names []string) error {
	a.cluster = "" // the registry is the manager's own, never routed
	cl, _, err := a.client()
	if err != nil {
		return err
	}
	cs, err := cl.Clusters(cmd.Context())
	if err != nil {
		return err
	}
	if len(names) == 1 {
		i := slices.IndexFunc(cs, func(c wire.Cluster) bool { return c.ID == names[0] })
		if i < 0 {
			return &client.Error{Status: http.StatusNotFound, Problem: wire.Problem{Detail: fmt.Sprintf("cluster %q is not registered with the manager", names[0])}}
		}
		cs = cs[i : i+1]
		if a.output != "table" {
			return printValue(a.Out, a.output, cs[0])
		}
	}
	if a.output != "table" {
		return printValue(a.Out, a.output, cs)
	}
	var rows [][]string
	for _, c := range cs {
		epoch := "-"
		if c.Epoch > 0 {
			epoch = fmt.Sprint(c.Epoch)
		}
		rows = append(rows, []string{c.ID, string(c.Status), c.Region, c.Account, orDash(c.Node), epoch,
			orDash(c.Version), ago(c.ConnectedSince), ago(c.LastHeartbeat)})
	}
	return table(a.Out, []string{"CLUSTER", "STATUS", "REGION", "ACCOUNT", "ACTIVE", "EPOCH", "VERSION", "CONNECTED", "HEARTBEAT"}, rows)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String()
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func resourceTable(w io.Writer, k resource.Kind, objs []resource.Object) error {
	var header []string
	var rows [][]string
	for _, o := range objs {
		m := o.GetMeta()
		switch v := o.(type) {
		case *resource.Service:
			header = []string{"NAME", "TYPE", "REPOSITORY", "FILE", "DECORATOR", "VERSION", "AGE"}
			rows = append(rows, []string{m.Name, string(v.Type), v.Repository, filepath.Join(v.WorkingDir, v.Filename), v.Decorator, fmt.Sprint(m.Version), ago(m.CreatedAt)})
		case *resource.Decorator:
			header = []string{"NAME", "DESCRIPTION", "VERSION", "AGE"}
			rows = append(rows, []string{m.Name, v.Description, fmt.Sprint(m.Version), ago(m.CreatedAt)})
		case *resource.Repository:
			header = []string{"NAME", "URL", "REFERENCE", "VERSION", "AGE"}
			rows = append(rows, []string{m.Name, v.URL, v.Reference, fmt.Sprint(m.Version), ago(m.CreatedAt)})
		case *resource.Secret:
			header = []string{"NAME", "DESCRIPTION", "VERSION", "AGE"}
			rows = append(rows, []string{m.Name, v.Description, fmt.Sprint(m.Version), ago(m.CreatedAt)})
		}
	}
	if header == nil {
		fmt.Fprintf(w, "no %s\n", client.Plural(k))
		return nil
	}
	return table(w, header, rows)
}

func executionTable(w io.Writer, es []*wire.Execution) error {
	if len(es) == 0 {
		fmt.Fprintln(w, "no executions")
		return nil
	}
	var rows [][]string
	for _, e := range es {
		code := "-"
		if e.ExitCode != nil {
			code = strconv.Itoa(*e.ExitCode)
		}
		dur := "-"
		if d := e.Duration(); d > 0 {
			dur = d.Round(time.Millisecond).String()
		}
		rows = append(rows, []string{e.ID, e.Service, string(e.Status), code, dur, e.Node, ago(e.CreatedAt)})
	}
	return table(w, []string{"ID", "SERVICE", "STATUS", "EXIT", "DURATION", "NODE", "AGE"}, rows)
}

func (a *App) describeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "describe KIND NAME",
		Short: "Show everything about one resource or execution",
		Args:  exactArgs(2, "KIND NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, cl, err := a.kindClient(args[0])
			if err != nil {
				return err
			}
			var v any
			if k == resource.KindExecution {
				e, err := cl.Execution(cmd.Context(), args[1])
				if err != nil {
					return err
				}
				if a.output == "table" {
					return describeExecution(a.Out, e)
				}
				v = e
			} else {
				if v, err = cl.Get(cmd.Context(), k, args[1]); err != nil {
					return err
				}
			}
			format := a.output
			if format == "table" {
				format = "yaml"
			}
			return printValue(a.Out, format, v)
		},
	}
}

func describeExecution(w io.Writer, e *wire.Execution) error {
	p := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-16s%s\n", k+":", clean(v))
		}
	}
	p("ID", e.ID)
	p("Service", fmt.Sprintf("%s (%s, version %d)", e.Service, e.ServiceType, e.ServiceVersion))
	p("Status", string(e.Status))
	p("Reason", e.Reason)
	if e.ExitCode != nil {
		p("Exit code", strconv.Itoa(*e.ExitCode))
	}
	p("Node", e.Node)
	if e.Attempt > 0 {
		p("Attempt", strconv.Itoa(e.Attempt))
	}
	p("Commit", e.Commit)
	p("Submitter", e.Submitter)
	p("Created", e.CreatedAt.Local().Format(time.RFC3339))
	if e.StartedAt != nil {
		p("Started", e.StartedAt.Local().Format(time.RFC3339))
	}
	if e.EndedAt != nil {
		p("Ended", e.EndedAt.Local().Format(time.RFC3339))
		p("Duration", e.Duration().Round(time.Millisecond).String())
	}
	if len(e.Inputs) > 0 {
		raw, _ := json.Marshal(e.Inputs) // decoded JSON always re-encodes
		p("Inputs", string(raw))
	}
	for _, s := range []struct {
		name string
		out  execution.Output
	}{{"Stdout", e.Stdout}, {"Stderr", e.Stderr}} {
		if s.out.Data == "" {
			continue
		}
		fmt.Fprintf(w, "%s:\n", s.name)
		for _, line := range strings.Split(strings.TrimRight(s.out.Data, "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	return nil
}

func (a *App) editCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "edit KIND NAME",
		Short: "Edit a resource in $EDITOR (YAML); saved only if nobody changed it meanwhile",
		Long: `Open the resource as YAML in $EDITOR (or $VISUAL, else vi). When you save and quit, the
change is sent with the version you started from: if someone else changed the resource
in the meantime, the update is rejected with a conflict and nothing is lost.
Secrets: add a 'stringValue' field (the value as text) or 'value' (base64) to replace the
value; without either the value stays. If the update fails (a conflict, a bad field),
your edited YAML is kept in a temporary file (0600) whose path is printed.`,
		Args: exactArgs(2, "KIND NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, cl, err := a.kindClient(args[0])
			if err != nil {
				return err
			}
			if _, err := resource.New(k); err != nil {
				return usageErr{err}
			}
			o, err := cl.Get(cmd.Context(), k, args[1])
			if err != nil {
				return err
			}
			raw, err := yaml.Marshal(o)
			if err != nil {
				return err
			}
			edited, err := a.runEditor(raw)
			if err != nil {
				return err
			}
			if bytes.Equal(edited, raw) {
				fmt.Fprintln(a.Out, "edit canceled, no changes made")
				return nil
			}
			n, err := decodeEdit(k, edited)
			if err == nil && n.GetMeta().Name != o.GetMeta().Name {
				err = usageErr{errors.New("the name cannot be changed")}
			}
			if err == nil {
				err = cl.Update(cmd.Context(), n)
			}
			if err != nil {
				return a.keepEdits(err, edited)
			}
			a.warn(n)
			fmt.Fprintf(a.Out, "%s/%s edited (version %d)\n", k, n.GetMeta().Name, n.GetMeta().Version)
			return nil
		},
	}
}

// decodeEdit decodes edited YAML of kind k the way apply decodes a document.
func decodeEdit(k resource.Kind, edited []byte) (resource.Object, error) {
	js, err := yaml.YAMLToJSON(edited)
	if err != nil {
		return nil, usageErr{fmt.Errorf("edited YAML: %w", err)}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(js, &fields); err != nil {
		return nil, usageErr{fmt.Errorf("edited YAML: want a mapping: %w", err)}
	}
	o, err := decodeResource(k, fields)
	if err != nil {
		return nil, fmt.Errorf("edited YAML: %w", err)
	}
	return o, nil
}

// keepEdits saves edited to a temporary file (0600), so a failed update
// does not throw the user's work away, and says where it is.
func (a *App) keepEdits(err error, edited []byte) error {
	f, ferr := os.CreateTemp("", "autogate-edit-kept-*.yaml")
	if ferr == nil {
		_, ferr = f.Write(edited)
		if cerr := f.Close(); ferr == nil {
			ferr = cerr
		}
	}
	if ferr != nil {
		return fmt.Errorf("%w (and your edits could not be kept: %v)", err, ferr)
	}
	fmt.Fprintf(a.Err, "your edits are kept in %s\n", f.Name())
	return err
}

func (a *App) runEditor(content []byte) ([]byte, error) {
	editor := a.Getenv("VISUAL")
	if editor == "" {
		editor = a.Getenv("EDITOR")
	}
	if editor == "" {
		editor = "vi"
	}
	f, err := os.CreateTemp("", "autogate-edit-*.yaml")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(content); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	parts := strings.Fields(editor)
	c := exec.Command(parts[0], append(parts[1:], f.Name())...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, a.Err, a.Err
	if err := c.Run(); err != nil {
		return nil, fmt.Errorf("editor %s: %w", editor, err)
	}
	return os.ReadFile(f.Name())
}

func (a *App) deleteCmd() *cobra.Command {
	var version int64
	cmd := &cobra.Command{
		Use:   "delete KIND NAME",
		Short: "Delete a resource (or a user)",
		Args:  exactArgs(2, "KIND NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, cl, err := a.kindClient(args[0])
			if err != nil {
				return err
			}
			if k == resource.KindUser {
				err = cl.DeleteUser(cmd.Context(), args[1])
			} else {
				if _, err := resource.New(k); err != nil {
					return usageErr{err}
				}
				err = cl.Delete(cmd.Context(), k, args[1], version)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "%s/%s deleted\n", k, args[1])
			return nil
		},
	}
	cmd.Flags().Int64Var(&version, "version", 0, "delete only if this is still the current version")
	return cmd
}
