// Command autogate-shim is the services' supervising shim as a binary of
// its own (see executor.RunShim and executor.ShimBinary): installed next to
// autogate, it is started for every service run instead of the full
// binary, whose package initialisation would add milliseconds to each.
package main

import (
	"os"

	"github.com/autogate/autogate/internal/executor"
)

func main() {
	if code, ok := executor.RunShim(os.Args); ok {
		os.Exit(code)
	}
	os.Stderr.WriteString("autogate-shim: the executor starts this binary as a service's supervisor; it is not run by hand\n")
	os.Exit(2)
}
