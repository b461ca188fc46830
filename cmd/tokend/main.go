// Command tokend keeps vendor API tokens alive: see `tokend help`.
package main

import (
	"os"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
