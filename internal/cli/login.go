package cli

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/autogate/autogate/internal/client"
)

func (a *App) loginCmd() *cobra.Command {
	var server, caFile, user, passFile, name string
	var insecure, insecureHTTP, passStdin bool
	cmd := &cobra.Command{
		Use:   "login --server URL",
		Short: "Log in to a gateway and save it as a context",
		Long: `Log in to a gateway and save the endpoint and a token as a context in the CLI
config file (0600). The password is read from --password-file, from stdin with
--password-stdin, or from AUTOGATE_PASSWORD; never from a flag. An http:// server is
refused, since the password would cross the network in clear, except on a loopback
address with --insecure-http.

The first start of 'autogate server' writes the admin password to
DATA_DIR/admin-password and the self-signed certificate to DATA_DIR/tls/tls.crt:

  autogate login --server https://127.0.0.1:8443 \
      --ca-file ~/.local/share/autogate/tls/tls.crt \
      --password-file ~/.local/share/autogate/admin-password`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" {
				return usageErr{errors.New("--server is required")}
			}
			if err := checkServerURL(server, insecureHTTP); err != nil {
				return usageErr{err}
			}
			pw, err := a.readPassword(passFile, passStdin)
			if err != nil {
				return err
			}
			cl, err := client.New(server, "", client.TLS{CAFile: caFile, Insecure: insecure})
			if err != nil {
				return usageErr{err}
			}
			cl = a.retrying(cl)
			resp, err := cl.Login(cmd.Context(), user, pw)
			if err != nil {
				if untrustedCert(err) {
					return fmt.Errorf("login to %s: %w\nthe server's certificate is not trusted: pass --ca-file with the CA that signed it "+
						"(an all-in-one gateway's self-signed one is DATA_DIR/tls/tls.crt)", server, err)
				}
				return fmt.Errorf("login to %s: %w", server, err)
			}
			cfg, err := loadContexts(a.configPath)
			if err != nil {
				return err
			}
			if name == "" {
				if a.context != "" {
					name = a.context
				} else if u, err := url.Parse(server); err == nil {
					name = u.Host
				}
			}
			if caFile != "" {
				if abs, err := absPath(caFile); err == nil {
					caFile = abs
				}
			}
			cfg.Contexts[name] = &Context{Server: server, CAFile: caFile, Insecure: insecure, User: resp.User, Token: resp.Token}
			cfg.Current = name
			if err := cfg.save(a.configPath); err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "logged in to %s as %s (%s); context %q, token valid until %s\n",
				server, resp.User, resp.Role, name, resp.ExpiresAt.Local().Format("2006-01-02 15:04"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "gateway URL, e.g. https://127.0.0.1:8443")
	f.StringVar(&caFile, "ca-file", "", "PEM certificate(s) to trust for this server")
	f.BoolVar(&insecure, "insecure-skip-tls-verify", false, "do not verify the server's certificate (unsafe)")
	f.BoolVar(&insecureHTTP, "insecure-http", false, "allow an http:// server on a loopback address (127.0.0.1, ::1, localhost): the password and token travel unencrypted")
	f.StringVarP(&user, "username", "u", "admin", "user name")
	f.StringVar(&passFile, "password-file", "", "read the password from this file")
	f.BoolVar(&passStdin, "password-stdin", false, "read the password from stdin")
	f.StringVar(&name, "name", "", "context name (default: --context, else the server's host:port)")
	return cmd
}

func (a *App) readPassword(file string, stdin bool) (string, error) {
	switch {
	case file != "":
		raw, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		return strings.TrimRight(string(raw), "\r\n"), nil
	case stdin:
		line, err := bufio.NewReader(a.In).ReadString('\n')
		if err != nil && line == "" {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	case a.Getenv("AUTOGATE_PASSWORD") != "":
		return a.Getenv("AUTOGATE_PASSWORD"), nil
	}
	return "", usageErr{errors.New("no password: use --password-file, --password-stdin or AUTOGATE_PASSWORD")}
}

func (a *App) logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke the current context's token and forget it",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.cluster = "" // the token is the manager's own: never routed
			cl, c, err := a.client()
			if err != nil {
				return err
			}
			if err := cl.Logout(cmd.Context()); err != nil && client.StatusOf(err) != 401 {
				return err
			}
			cfg, err := loadContexts(a.configPath)
			if err != nil {
				return err
			}
			for _, ctx := range cfg.Contexts {
				if ctx.Token == c.Token {
					ctx.Token = ""
				}
			}
			if err := cfg.save(a.configPath); err != nil {
				return err
			}
			fmt.Fprintln(a.Out, "logged out")
			return nil
		},
	}
}

func (a *App) configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Show and switch CLI contexts"}
	cmd.AddCommand(&cobra.Command{
		Use:   "get-contexts",
		Short: "List contexts",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadContexts(a.configPath)
			if err != nil {
				return err
			}
			var rows [][]string
			for _, n := range cfg.names() {
				cur := ""
				if n == cfg.Current {
					cur = "*"
				}
				c := cfg.Contexts[n]
				rows = append(rows, []string{cur, n, c.Server, c.User})
			}
			return table(a.Out, []string{"CURRENT", "NAME", "SERVER", "USER"}, rows)
		},
	}, &cobra.Command{
		Use:   "use-context NAME",
		Short: "Make NAME the current context",
		Args:  exactArgs(1, "a context name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadContexts(a.configPath)
			if err != nil {
				return err
			}
			if _, ok := cfg.Contexts[args[0]]; !ok {
				return usageErr{fmt.Errorf("context %q not found (have: %s)", args[0], strings.Join(cfg.names(), ", "))}
			}
			cfg.Current = args[0]
			return cfg.save(a.configPath)
		},
	})
	return cmd
}

// checkServerURL refuses to send a password in clear: http:// only to a
// loopback address, and only when asked for explicitly.
func checkServerURL(server string, insecureHTTP bool) error {
	u, err := url.Parse(server)
	if err != nil {
		return fmt.Errorf("--server %q: %w", server, err)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
	default:
		return fmt.Errorf("--server %q: want an https:// URL", server)
	}
	h := u.Hostname()
	ip := net.ParseIP(h)
	loopback := h == "localhost" || ip != nil && ip.IsLoopback()
	switch {
	case !loopback:
		return fmt.Errorf("--server %q: refusing http:// to a non-loopback address: the password and the token would cross the network in clear; use https://", server)
	case !insecureHTTP:
		return fmt.Errorf("--server %q: http:// sends the password and the token unencrypted; use https://, or pass --insecure-http for a loopback address", server)
	}
	return nil
}

// untrustedCert reports whether err is a TLS verification failure, which
// for a self-signed gateway means --ca-file is missing.
func untrustedCert(err error) bool {
	var ua x509.UnknownAuthorityError
	var cv *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &cv)
}
