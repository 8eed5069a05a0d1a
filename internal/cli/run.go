package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

// parseSets turns --set k=v pairs into inputs. A value that parses as JSON
// (number, true/false, null, array, object, "quoted string") takes that
// type; anything else is a string. --set-string always gives a string.
func parseSets(sets, strs []string) (map[string]any, error) {
	in := map[string]any{}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, usageErr{fmt.Errorf("--set %q: want KEY=VALUE", s)}
		}
		var val any
		if err := json.Unmarshal([]byte(v), &val); err != nil {
			val = v
		}
		in[k] = val
	}
	for _, s := range strs {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, usageErr{fmt.Errorf("--set-string %q: want KEY=VALUE", s)}
		}
		in[k] = v
	}
	return in, nil
}

func (a *App) runCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "run", Short: "Run a service"}
	var sets, strs []string
	var inputsFile, key string
	var async, apply bool
	var wait time.Duration
	svc := &cobra.Command{
		Use:   "service TYPE NAME [--set KEY=VALUE ...]",
		Short: "Run a service and wait for it (or --async)",
		Long: `Run a service. Inputs come from --set KEY=VALUE (values that parse as JSON keep their
type: --set count=3 is a number; use --set-string to force a string) and from
--inputs-file (JSON or YAML), --set winning. Without --async the command waits,
prints the service's stdout and stderr, and exits with:
  0 succeeded, 20 failed, 21 timed out, 22 canceled, 23 lost, 24 still running at --wait.
A run refused with 429 (the cluster's backlog is full; nothing was recorded) is tried
again after the server's Retry-After, for up to a minute. With --request-key the run is
also tried again across a failover (503 from a standby, 502/504 from the load balancer,
a refused connection), for up to 10 s, as every read is. Each retry is one line on stderr.`,
		Example: `  autogate run service python-script ping --set host=10.0.0.1 --set count=3
  autogate run service python-script ping --set host=10.0.0.1 --async`,
		Args: exactArgs(2, "a service type and a name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := resource.ParseServiceType(args[0])
			if err != nil {
				return usageErr{err}
			}
			inputs := map[string]any{}
			if inputsFile != "" {
				raw, err := os.ReadFile(inputsFile)
				if err != nil {
					return usageErr{fmt.Errorf("inputs file: %w", err)}
				}
				if err := yaml.Unmarshal(raw, &inputs); err != nil {
					return usageErr{fmt.Errorf("inputs file %s: %w", inputsFile, err)}
				}
			}
			set, err := parseSets(sets, strs)
			if err != nil {
				return err
			}
			for k, v := range set {
				inputs[k] = v
			}
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			first := min(wait, 60*time.Second)
			e, err := cl.Run(ctx, args[1], wire.RunRequest{Type: string(t), Inputs: inputs, Async: async,
				RequestKey: key, Apply: apply, WaitSeconds: max(1, int(first.Seconds()))})
			if err != nil {
				return err
			}
			if async {
				if a.output != "table" {
					return printValue(a.Out, a.output, e)
				}
				fmt.Fprintln(a.Out, e.ID)
				return nil
			}
			deadline := time.Now().Add(wait)
			for !e.Status.Terminal() && time.Now().Before(deadline) {
				if e, err = cl.Wait(ctx, e.ID, min(time.Until(deadline), 60*time.Second).Round(time.Second)+time.Second); err != nil {
					return err
				}
			}
			return a.finish(e)
		},
	}
	f := svc.Flags()
	f.StringArrayVar(&sets, "set", nil, "input KEY=VALUE (repeatable)")
	f.StringArrayVar(&strs, "set-string", nil, "input KEY=VALUE, always a string (repeatable)")
	f.StringVar(&inputsFile, "inputs-file", "", "inputs as a JSON or YAML object")
	f.BoolVar(&async, "async", false, "return the execution ID at once")
	f.BoolVar(&apply, "apply", false, "opentofu-plan: apply the plan")
	f.StringVar(&key, "request-key", "", "idempotency key: a repeat with the same key returns the first execution")
	f.DurationVar(&wait, "wait", 12*time.Hour, "give up waiting after this long (the run continues)")
	cmd.AddCommand(svc)
	return cmd
}

// finish prints a finished (or still running) execution and maps its status
// to the exit code.
func (a *App) finish(e *wire.Execution) error {
	if a.output != "table" {
		if err := printValue(a.Out, a.output, e); err != nil {
			return err
		}
	} else {
		io.WriteString(a.Out, e.Stdout.Data)
		io.WriteString(a.Err, e.Stderr.Data)
	}
	code := map[execution.Status]int{execution.Succeeded: 0, execution.Failed: 20, execution.TimedOut: 21,
		execution.Canceled: 22, execution.Lost: 23}
	c, ok := code[e.Status]
	if !ok {
		return exitErr{24, fmt.Sprintf("execution %s is still %s; follow it with `autogate describe execution %s`", e.ID, e.Status, e.ID)}
	}
	msg := fmt.Sprintf("execution %s %s", e.ID, e.Status)
	if e.ExitCode != nil {
		msg += fmt.Sprintf(" (exit code %d)", *e.ExitCode)
	}
	if e.Reason != "" && e.Status != execution.Succeeded {
		msg += ": " + e.Reason
	}
	if c == 0 {
		fmt.Fprintln(a.Err, msg)
		return nil
	}
	return exitErr{c, msg}
}

func (a *App) cancelCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cancel", Short: "Cancel an execution"}
	cmd.AddCommand(&cobra.Command{
		Use:   "execution ID",
		Short: "Cancel a queued or running execution (kills its whole process group)",
		Args:  exactArgs(1, "an execution ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			e, err := cl.Cancel(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if e.Status.Terminal() {
				fmt.Fprintf(a.Out, "execution %s %s\n", e.ID, e.Status)
			} else {
				fmt.Fprintf(a.Out, "execution %s: cancel requested\n", e.ID)
			}
			return nil
		},
	})
	return cmd
}

func (a *App) logsCmd() *cobra.Command {
	var wait, follow bool
	var from string
	cmd := &cobra.Command{
		Use:   "logs EXECUTION_ID",
		Short: "Print an execution's captured stdout (to stdout) and stderr (to stderr); -f follows it live",
		Long: `Print an execution's captured stdout (to stdout) and stderr (to stderr), redacted as stored.
With -f, follow the output as the service writes it (GET /v1/executions/{id}/output,
server-sent events), reconnecting after a dropped connection from where it left off,
and exit when the run ends with the service's exit code (1..255), 0 when it
succeeded, or when there is no exit code: 20 failed, 21 timed out, 22 canceled, 23 lost.`,
		Example: `  autogate logs -f 01JD0000000000000000000000
  autogate --cluster eu-1 logs -f 01JD0000000000000000000000   # through the manager`,
		Args: exactArgs(1, "an execution ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			if follow {
				return a.followLogs(cmd, cl, args[0], from)
			}
			e, err := cl.Execution(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for wait && !e.Status.Terminal() {
				if e, err = cl.Wait(cmd.Context(), e.ID, time.Minute); err != nil {
					return err
				}
			}
			io.WriteString(a.Out, e.Stdout.Data)
			io.WriteString(a.Err, e.Stderr.Data)
			if !e.Status.Terminal() {
				fmt.Fprintf(a.Err, "(execution %s is still %s; follow it with `autogate logs -f %s`)\n", e.ID, e.Status, e.ID)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&wait, "wait", "w", false, "wait for the execution to end first")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "print the output as it is written and exit with the run's exit code")
	cmd.Flags().StringVar(&from, "from", "", "with -f: resume after these byte offsets, STDOUT.STDERR (an event ID)")
	return cmd
}

// followLogs prints the output as it streams and exits like the run.
func (a *App) followLogs(cmd *cobra.Command, cl *client.Client, id, from string) error {
	end, err := cl.FollowOutput(cmd.Context(), id, from, func(o client.Output) error {
		w := a.Out
		if o.Stream == "stderr" {
			w = a.Err
		}
		_, err := io.WriteString(w, o.Text)
		return err
	})
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("execution %s %s", id, end.Status)
	if end.ExitCode != nil {
		msg += fmt.Sprintf(" (exit code %d)", *end.ExitCode)
	}
	switch {
	case end.Status == execution.Succeeded:
		return nil
	case end.ExitCode != nil && *end.ExitCode > 0:
		return exitErr{min(*end.ExitCode, 255), msg}
	}
	code := map[execution.Status]int{execution.Failed: 20, execution.TimedOut: 21, execution.Canceled: 22, execution.Lost: 23}[end.Status]
	return exitErr{max(code, 1), msg}
}

var errNoDocs = errors.New("no resources in the input")

func (a *App) redriveCmd() *cobra.Command {
	var max int
	cmd := &cobra.Command{
		Use:   "redrive",
		Short: "Move dead-lettered executions back to the work queue (after fixing what made them fail)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			n, err := cl.Redrive(cmd.Context(), max)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "%d message(s) moved back to the work queue\n", n)
			return nil
		},
	}
	cmd.Flags().IntVar(&max, "max", 100, "move at most this many")
	return cmd
}
