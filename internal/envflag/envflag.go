// Package envflag defines command-line flags whose defaults come from
// environment variables, so that every setting of the binaries can be given
// either way; the flag wins when both are.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"time"
)

// Set is a flag.FlagSet that also reads each flag's environment variable.
type Set struct {
	*flag.FlagSet
	getenv  func(string) string
	envErrs []error
}

// New returns an empty Set that reads the environment through getenv and
// prints usage and errors to output.
func New(name string, getenv func(string) string, output io.Writer) *Set {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	return &Set{FlagSet: fs, getenv: getenv}
}

// String defines a string flag that defaults to $env, or def when unset.
func (s *Set) String(name, env, def, usage string) *string {
	p := s.FlagSet.String(name, def, usage+" (env "+env+")")
	s.fromEnv(name, env)
	return p
}

// Duration defines a duration flag that defaults to $env, or def when unset.
func (s *Set) Duration(name, env string, def time.Duration, usage string) *time.Duration {
	p := s.FlagSet.Duration(name, def, usage+" (env "+env+")")
	s.fromEnv(name, env)
	return p
}

// Int defines an int flag that defaults to $env, or def when unset.
func (s *Set) Int(name, env string, def int, usage string) *int {
	p := s.FlagSet.Int(name, def, usage+" (env "+env+")")
	s.fromEnv(name, env)
	return p
}

// Int64 defines an int64 flag that defaults to $env, or def when unset.
func (s *Set) Int64(name, env string, def int64, usage string) *int64 {
	p := s.FlagSet.Int64(name, def, usage+" (env "+env+")")
	s.fromEnv(name, env)
	return p
}

// Parse reports a malformed environment variable, then parses args.
func (s *Set) Parse(args []string) error {
	if err := errors.Join(s.envErrs...); err != nil {
		return err
	}
	return s.FlagSet.Parse(args)
}

func (s *Set) fromEnv(name, env string) {
	v := s.getenv(env)
	if v == "" {
		return
	}
	if err := s.FlagSet.Set(name, v); err != nil {
		s.envErrs = append(s.envErrs, fmt.Errorf("%s=%s: %w", env, strconv.Quote(v), err))
	}
}

// GCPercent sets the garbage collector's target to percent unless GOGC is
// in the environment, which then wins as it always does. The binaries'
// live heap is a few megabytes, so at Go's default of 100 the collector
// runs after every few megabytes of calls; at 200 it runs half as often,
// for about 12 % less CPU per call in the server and in the gateway and no
// change in memory per held stream (bench/).
func GCPercent(getenv func(string) string, percent int) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
}
