// Command autogate is Autogate's one binary: the gateway server, the
// runner, the Gateway Manager and the client verbs. main only wires; see
// internal/cli, serve.go and manager.go.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/autogate/autogate/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := &cli.App{Out: os.Stdout, Err: os.Stderr, In: os.Stdin, Getenv: os.Getenv, Version: version}
	code := app.Main(ctx, os.Args[1:], serverCmd(), runnerCmd(), initCmd(), rotateCmd(), managerCmd())
	stop()
	os.Exit(code)
}
