// Package envflag defines command-line flags whose defaults come from
// environment variables, so that every setting of the binaries can be given
// either way; the flag wins when both are.
//
// It stays hand-written, though github.com/peterbourgon/ff/v3 also reads
// flags from the environment with the same precedence: ff derives each
// variable's name from its flag's (a prefix, upper case), where these
// binaries' names differ by design (-addr is CODENAME_GRPC_ADDR in one and
// CODENAME_GATEWAY_ADDR in the other); it reads os.Getenv, where the tests
// inject getenv; and it prints no help, where ours lists each flag's
// variable and the ones read besides (AlsoReads, PassesOn), which the
// binaries' help tests check. Wrapping ff would keep all of this code.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Set is a set of flags, each of which also reads an environment variable.
// Every flag has one: the only way to define a flag is through Set's
// methods, which ask for its variable's name.
type Set struct {
	fs      *flag.FlagSet
	name    string
	about   string
	output  io.Writer
	getenv  func(string) string
	env     map[string]string // flag name to its variable
	envErrs []error
	// repeated names the flags defined by Repeated, which read their
	// variable only when not given.
	repeated []string
	// reads and others are variables that are no flag, documented in the
	// help: read by this program, or handed on to the ones it starts.
	reads, others []envNote
}

// envNote is an environment variable that is not a flag.
type envNote struct{ env, usage string }

// New returns an empty Set that reads the environment through getenv and
// prints its help to output. The flag package prints nothing itself:
// Parse returns what went wrong, for main to print once.
func New(name string, getenv func(string) string, output io.Writer) *Set {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &Set{fs: fs, name: filepath.Base(name), output: output, getenv: getenv, env: map[string]string{}}
}

// About sets the one line that opens the help: what the program is.
func (s *Set) About(line string) { s.about = line }

// String defines a string flag that defaults to $env, or def when unset.
func (s *Set) String(name, env, def, usage string) *string {
	p := s.fs.String(name, def, usage)
	s.fromEnv(name, env)
	return p
}

// Duration defines a duration flag that defaults to $env, or def when unset.
func (s *Set) Duration(name, env string, def time.Duration, usage string) *time.Duration {
	p := s.fs.Duration(name, def, usage)
	s.fromEnv(name, env)
	return p
}

// Int defines an int flag that defaults to $env, or def when unset.
func (s *Set) Int(name, env string, def int, usage string) *int {
	p := s.fs.Int(name, def, usage)
	s.fromEnv(name, env)
	return p
}

// Int64 defines an int64 flag that defaults to $env, or def when unset.
func (s *Set) Int64(name, env string, def int64, usage string) *int64 {
	p := s.fs.Int64(name, def, usage)
	s.fromEnv(name, env)
	return p
}

// Bool defines a boolean flag that defaults to $env (true, 1, false, 0,
// as strconv.ParseBool reads them), or def when unset.
func (s *Set) Bool(name, env string, def bool, usage string) *bool {
	p := s.fs.Bool(name, def, usage)
	s.fromEnv(name, env)
	return p
}

// Repeated defines a flag that may be given several times, each one
// calling v.Set; $env holds its values separated by commas, used only when
// the flag is not given at all.
func (s *Set) Repeated(v flag.Value, name, env, usage string) {
	s.fs.Var(v, name, usage)
	s.setEnv(name, env)
	s.repeated = append(s.repeated, name)
}

// repeatedFromEnv sets each repeated flag not given on the command line
// from its variable.
func (s *Set) repeatedFromEnv() error {
	given := map[string]bool{}
	s.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, name := range s.repeated {
		env := s.env[name]
		raw := s.getenv(env)
		if raw == "" || given[name] {
			continue
		}
		for _, item := range strings.Split(raw, ",") {
			if err := s.fs.Lookup(name).Value.Set(item); err != nil {
				return fmt.Errorf("%s=%s: %w", env, strconv.Quote(raw), err)
			}
		}
	}
	return nil
}

// PassesOn documents, in the help, an environment variable that this
// program does not read as a flag but that the processes it starts do.
func (s *Set) PassesOn(env, usage string) { s.others = append(s.others, envNote{env, usage}) }

// AlsoReads documents, in the help, an environment variable that this
// program reads but not as a flag, such as a library's standard ones.
func (s *Set) AlsoReads(env, usage string) { s.reads = append(s.reads, envNote{env, usage}) }

// Parse reports a malformed environment variable, then parses args. Asked
// for -help (or -h), it prints the help and returns flag.ErrHelp, which
// main takes for success.
func (s *Set) Parse(args []string) error {
	if err := errors.Join(s.envErrs...); err != nil {
		return err
	}
	err := s.fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		s.PrintHelp(s.output)
		return flag.ErrHelp
	case err != nil:
		return fmt.Errorf("%w (%s -help lists the flags)", err, s.name)
	case s.fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q: every setting is a flag (%s -help lists them)", s.fs.Arg(0), s.name)
	}
	return s.repeatedFromEnv()
}

// PrintHelp writes the help: the About line, then every flag with its
// environment variable and default, then the variables passed on.
func (s *Set) PrintHelp(w io.Writer) {
	var b strings.Builder
	if s.about != "" {
		b.WriteString(s.about + "\n\n")
	}
	fmt.Fprintf(&b, "Usage: %s [flags]\n\nEach flag can also be set by the environment variable named after it; a flag given wins.\n\n", s.name)
	s.fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  -%s", f.Name)
		if kind != "" {
			b.WriteString(" " + kind)
		}
		fmt.Fprintf(&b, "   $%s", s.env[f.Name])
		if !isZero(f.DefValue) {
			fmt.Fprintf(&b, "   (default %s)", strconv.Quote(f.DefValue))
		}
		b.WriteString("\n        " + usage + "\n")
	})
	for _, section := range []struct {
		title string
		notes []envNote
	}{
		{"Also read from the environment:", s.reads},
		{"Read from the environment by the processes it starts (their -help says more):", s.others},
	} {
		if len(section.notes) == 0 {
			continue
		}
		b.WriteString("\n" + section.title + "\n\n")
		for _, o := range section.notes {
			fmt.Fprintf(&b, "  $%s\n        %s\n", o.env, o.usage)
		}
	}
	_, _ = io.WriteString(w, b.String())
}

// setEnv records a flag's variable. A flag without one is a mistake in
// the program, not in its input: it panics, so that any run finds it.
func (s *Set) setEnv(name, env string) {
	if env == "" {
		panic("envflag: flag -" + name + " has no environment variable")
	}
	s.env[name] = env
}

// isZero reports whether a flag's default is its type's zero value, which
// the help leaves out.
func isZero(def string) bool {
	switch def {
	case "", "0", "0s", "false":
		return true
	}
	return false
}

func (s *Set) fromEnv(name, env string) {
	s.setEnv(name, env)
	v := s.getenv(env)
	if v == "" {
		return
	}
	if err := s.fs.Set(name, v); err != nil {
		s.envErrs = append(s.envErrs, fmt.Errorf("%s=%s: %w", env, strconv.Quote(v), err))
	}
}
