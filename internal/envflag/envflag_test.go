package envflag

import (
	"errors"
	"flag"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestPrecedence(t *testing.T) {
	env := map[string]string{"ADDR": "from-env:1", "EVERY": "3s"}
	tests := []struct {
		name      string
		args      []string
		wantAddr  string
		wantEvery time.Duration
	}{
		{name: "defaults when neither is set", args: nil, wantAddr: "from-env:1", wantEvery: 3 * time.Second},
		{name: "flag beats environment", args: []string{"-addr", "from-flag:2", "-every", "5s"}, wantAddr: "from-flag:2", wantEvery: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New("test", func(k string) string { return env[k] }, io.Discard)
			addr := s.String("addr", "ADDR", "default:0", "address")
			every := s.Duration("every", "EVERY", time.Second, "interval")
			if err := s.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if *addr != tt.wantAddr || *every != tt.wantEvery {
				t.Errorf("got %q %v, want %q %v", *addr, *every, tt.wantAddr, tt.wantEvery)
			}
		})
	}
}

func TestDefaultWhenEnvUnset(t *testing.T) {
	s := New("test", func(string) string { return "" }, io.Discard)
	n := s.Int("n", "N", 7, "count")
	if err := s.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if *n != 7 {
		t.Errorf("got %d, want 7", *n)
	}
}

func TestMalformedEnvIsAnError(t *testing.T) {
	s := New("test", func(string) string { return "soon" }, io.Discard)
	s.Duration("every", "EVERY", time.Second, "interval")
	err := s.Parse(nil)
	if err == nil || !strings.Contains(err.Error(), `EVERY="soon"`) {
		t.Fatalf("got %v, want an error naming EVERY and its value", err)
	}
}

// TestHelp: -help and -h print the About line first, then every flag of
// the set with its variable and non-zero default, then the variables
// passed on; and Parse returns flag.ErrHelp, which main takes for success.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"-help", "-h", "--help"} {
		t.Run(arg, func(t *testing.T) {
			var out strings.Builder
			s := New("/some/where/prog", func(string) string { return "" }, &out)
			s.About("prog does one thing well.")
			s.String("addr", "PROG_ADDR", "127.0.0.1:1", "where to listen")
			s.Duration("every", "PROG_EVERY", 0, "how often")
			s.Int("n", "PROG_N", 3, "how many")
			s.Int64("max", "PROG_MAX", 0, "largest `bytes` count")
			s.Bool("fast", "PROG_FAST", false, "go fast")
			var l list
			s.Repeated(&l, "H", "PROG_HEADERS", "a header")
			s.PassesOn("PROG_CHILD_THING", "what the children read")
			s.AlsoReads("LIB_THING", "what a library reads")
			if err := s.Parse([]string{arg}); !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("Parse(%s) = %v, want flag.ErrHelp", arg, err)
			}
			help := out.String()
			if first, _, _ := strings.Cut(help, "\n"); first != "prog does one thing well." {
				t.Errorf("first line %q, want the About line", first)
			}
			if !strings.Contains(help, "Usage: prog [flags]") {
				t.Errorf("no usage line naming prog:\n%s", help)
			}
			n := 0
			s.fs.VisitAll(func(f *flag.Flag) {
				n++
				line := regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(f.Name) + `\b.*$`).FindString(help)
				if !strings.Contains(line, "$"+s.env[f.Name]) || s.env[f.Name] == "" {
					t.Errorf("flag -%s: line %q does not name its variable %q", f.Name, line, s.env[f.Name])
				}
				if hasDefault := strings.Contains(line, "(default "); hasDefault == isZero(f.DefValue) {
					t.Errorf("flag -%s (default %q): line %q", f.Name, f.DefValue, line)
				}
			})
			if n != 6 {
				t.Errorf("visited %d flags, want 6", n)
			}
			for _, want := range []string{`-addr string   $PROG_ADDR   (default "127.0.0.1:1")`, "-max bytes   $PROG_MAX\n", "-fast   $PROG_FAST\n", "\n  $PROG_CHILD_THING\n        what the children read\n", "Also read from the environment:\n\n  $LIB_THING\n        what a library reads\n"} {
				if !strings.Contains(help, want) {
					t.Errorf("help lacks %q:\n%s", want, help)
				}
			}
		})
	}
}

// TestBadFlagsSayWhereTheHelpIs: a mistake is one error, returned for main
// to print, that points to -help; nothing is printed.
func TestBadFlagsSayWhereTheHelpIs(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-nope"}, "flag provided but not defined: -nope (prog -help lists the flags)"},
		{[]string{"-n", "many"}, `invalid value "many" for flag -n: parse error (prog -help lists the flags)`},
		{[]string{"stray"}, `unexpected argument "stray": every setting is a flag (prog -help lists them)`},
	} {
		var out strings.Builder
		s := New("prog", func(string) string { return "" }, &out)
		s.Int("n", "N", 0, "count")
		err := s.Parse(tt.args)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%q) = %v, want %q", tt.args, err, tt.want)
		}
		if out.Len() != 0 {
			t.Errorf("Parse(%q) printed %q, want nothing", tt.args, out.String())
		}
	}
}

// list is a repeatable flag's value.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(v string) error {
	if v == "bad" {
		return errors.New("bad item")
	}
	*l = append(*l, v)
	return nil
}

func TestRepeated(t *testing.T) {
	env := map[string]string{"ITEMS": "a,b"}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    string
		wantErr string
	}{
		{name: "from the environment, split on commas", env: env, want: "a,b"},
		{name: "flags win, the variable is ignored", env: env, args: []string{"-i", "x", "-i", "y"}, want: "x,y"},
		{name: "neither", want: ""},
		{name: "bad item in the environment", env: map[string]string{"ITEMS": "a,bad"}, wantErr: `ITEMS="a,bad": bad item`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New("prog", func(k string) string { return tt.env[k] }, io.Discard)
			var l list
			s.Repeated(&l, "i", "ITEMS", "item")
			err := s.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Parse = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := l.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBoolFromEnv(t *testing.T) {
	s := New("prog", func(k string) string { return map[string]string{"FAST": "true"}[k] }, io.Discard)
	fast := s.Bool("fast", "FAST", false, "go fast")
	if err := s.Parse(nil); err != nil || !*fast {
		t.Errorf("Parse = %v, fast = %v; want nil, true", err, *fast)
	}
}
