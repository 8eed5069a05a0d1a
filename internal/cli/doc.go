// Package cli is the `autogate` command line: kubectl-style verbs over the
// /v1 API through package client, never through internal calls.
//
// Results go to stdout, diagnostics to stderr. Exit codes are a contract:
//
//	0  success                      5  authentication or permission
//	1  failure (other)              6  invalid input (bad name, decorator…)
//	2  usage error                  7  server unavailable (down, standby)
//	3  not found                    20 run ended failed
//	4  already exists / conflict    21 run timed out
//	                                22 run canceled, 23 run lost
//	                                24 run still going when the wait ended
package cli
