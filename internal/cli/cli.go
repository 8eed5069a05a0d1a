package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/resource"
)

// App holds what commands need from the outside world, so tests can inject
// every input and capture every output.
type App struct {
	Out, Err io.Writer
	In       io.Reader
	Getenv   func(string) string
	Version  string

	configPath string
	context    string
	output     string
	server     string
	cluster    string
}

// usageErr marks a usage error (exit 2).
type usageErr struct{ error }

func (u usageErr) Unwrap() error { return u.error }

// exitErr carries an explicit exit code (run results).
type exitErr struct {
	code int
	msg  string
}

func (e exitErr) Error() string { return e.msg }

// ExitCode maps an error to the documented exit codes.
func ExitCode(err error) int {
	var ee exitErr
	var ue usageErr
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		return 2
	case errors.Is(err, resource.ErrInvalid):
		return 6 // found before asking the server, which would answer 400 or 422
	}
	switch st := client.StatusOf(err); {
	case st == http.StatusNotFound:
		return 3
	case st == http.StatusConflict:
		return 4
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		return 5
	case st == http.StatusBadRequest || st == http.StatusUnprocessableEntity || st == http.StatusRequestEntityTooLarge:
		return 6
	case st == http.StatusServiceUnavailable || st == http.StatusBadGateway || st == http.StatusGatewayTimeout:
		return 7
	case st == 0 && isConnErr(err):
		return 7
	}
	return 1
}

func isConnErr(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "no such host") || strings.Contains(s, "i/o timeout")
}

// Root builds the command tree. extra commands (the server, the runner) are
// added by the binary.
func (a *App) Root(extra ...*cobra.Command) *cobra.Command {
	if a.Getenv == nil {
		a.Getenv = os.Getenv
	}
	root := &cobra.Command{
		Use:   "autogate",
		Short: "Autogate: an automation gateway for network and cloud operators",
		Long: `Autogate stores automation services (Python scripts, Ansible playbooks, OpenTofu
plans, executables), validates their inputs, pulls their code from git and runs them.

Start an all-in-one gateway with 'autogate server', log in with 'autogate login',
then create, get, run and describe resources.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       a.Version,
	}
	root.SetOut(a.Out)
	root.SetErr(a.Err)
	if a.In != nil {
		root.SetIn(a.In)
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.configPath, "config", DefaultConfigPath(a.Getenv), "CLI config file with contexts (env AUTOGATE_CONFIG)")
	pf.StringVar(&a.context, "context", a.Getenv("AUTOGATE_CONTEXT"), "context to use (env AUTOGATE_CONTEXT; default: the current one)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table, json or yaml")
	pf.StringVar(&a.cluster, "cluster", "", "with a Gateway Manager context: act on this cluster, routed through the manager (apply takes several, comma-separated)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageErr{err} })
	root.AddCommand(a.loginCmd(), a.logoutCmd(), a.configCmd(), a.createCmd(), a.getCmd(), a.describeCmd(),
		a.editCmd(), a.updateCmd(), a.deleteCmd(), a.runCmd(), a.cancelCmd(), a.logsCmd(), a.applyCmd(), a.exportCmd(), a.redriveCmd())
	root.AddCommand(extra...)
	return root
}

// Main runs the CLI with args and returns the exit code.
func (a *App) Main(ctx context.Context, args []string, extra ...*cobra.Command) int {
	root := a.Root(extra...)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(a.Err, "error:", err)
		if strings.Contains(err.Error(), "unknown command") || strings.Contains(err.Error(), "accepts ") ||
			strings.Contains(err.Error(), "requires ") || strings.Contains(err.Error(), "unknown flag") {
			return 2
		}
	}
	return ExitCode(err)
}

// client builds an API client from the selected context.
func (a *App) client() (*client.Client, *Context, error) {
	cfg, err := loadContexts(a.configPath)
	if err != nil {
		return nil, nil, err
	}
	name := a.context
	if name == "" {
		name = cfg.Current
	}
	c, ok := cfg.Contexts[name]
	if !ok {
		if name == "" {
			return nil, nil, usageErr{errors.New("no context: run `autogate login --server https://HOST:PORT` first")}
		}
		return nil, nil, usageErr{fmt.Errorf("context %q not found (have: %s)", name, strings.Join(cfg.names(), ", "))}
	}
	token := c.Token
	if t := a.Getenv("AUTOGATE_TOKEN"); t != "" {
		token = t
	}
	cl, err := client.New(c.Server, token, client.TLS{CAFile: c.CAFile, Insecure: c.Insecure})
	if err != nil {
		return nil, nil, err
	}
	cl = a.retrying(cl)
	switch ids := a.clusters(); len(ids) {
	case 0:
	case 1:
		cl = cl.Cluster(ids[0])
	default:
		return nil, nil, usageErr{fmt.Errorf("--cluster %s: only apply takes several clusters", a.cluster)}
	}
	return cl, c, nil
}

// retrying makes cl retry as client.DefaultRetry does (a full backlog, a
// failover), saying so on stderr.
func (a *App) retrying(cl *client.Client) *client.Client {
	r := client.DefaultRetry
	r.Notify = func(e client.RetryEvent) { fmt.Fprintln(a.Err, "autogate:", e) }
	return cl.WithRetry(r)
}

// clusters returns the --cluster list, empty when not routing through a
// Gateway Manager.
func (a *App) clusters() []string {
	var ids []string
	for _, id := range strings.Split(a.cluster, ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr{fmt.Errorf("%s: want %s, got %d argument(s)", cmd.CommandPath(), names, len(args))}
		}
		return nil
	}
}
