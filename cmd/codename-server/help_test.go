package main

import (
	"io"
	"testing"

	"github.com/codename-gateway/codename-gateway/internal/helptest"
)

func TestHelp(t *testing.T) {
	helptest.Check(t, helptest.Program{
		Name: "codename-server", About: about, Main: main, HelpOnStderr: true,
		Run: func(args []string, getenv func(string) string) error {
			return run(t.Context(), args, getenv, io.Discard)
		},
	})
}
