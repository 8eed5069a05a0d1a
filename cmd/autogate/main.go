// Command autogate is Autogate's one binary: the gateway server, the
// runner, the Gateway Manager and the client verbs. This package holds
// only cobra commands and flag parsing; the processes are internal/server,
// the client verbs internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/autogate/autogate/internal/cli"
	"github.com/autogate/autogate/internal/executor"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	// A service's supervising shim is this binary under another name.
	if code, ok := executor.RunShim(os.Args); ok {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := &cli.App{Out: os.Stdout, Err: os.Stderr, In: os.Stdin, Getenv: os.Getenv, Version: version}
	code := app.Main(ctx, os.Args[1:], serverCmd(), runnerCmd(), initCmd(), rotateCmd(), app.Manager(managerCmd()))
	stop()
	os.Exit(code)
}
