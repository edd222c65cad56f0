package main

import (
	"io"

	"github.com/urfave/cli/v2"
)

func demoCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run the whole node in-process against a simulated remote chain, then exit",
		Action: func(c *cli.Context) error {
			return &usageError{errDemoNotBuilt}
		},
	}
}

var errDemoNotBuilt = errorString("demo is not built yet")

type errorString string

func (e errorString) Error() string { return string(e) }
