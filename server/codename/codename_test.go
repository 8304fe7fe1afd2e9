package codename_test

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/codename-gateway/codename-gateway/server/codename"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "canonical name", in: "animals", want: "animals"},
		{name: "upper case", in: "SCIENCE", want: "science"},
		{name: "mixed case", in: "SpAcE", want: "space"},
		{name: "surrounding space", in: " \tscience\n ", want: "science"},
		{name: "empty means default", in: "", want: codename.Default},
		{name: "only space means default", in: " \t\n", want: codename.Default},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := codename.Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.in, err)
			}
			if got := c.Name(); got != tt.want {
				t.Errorf("Parse(%q).Name() = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseUnknown(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "unknown word", in: "plants"},
		{name: "singular", in: "animal"},
		{name: "two categories", in: "animals science"},
		{name: "inner space", in: "sci ence"},
		{name: "comma list", in: "animals,space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := codename.Parse(tt.in)
			var unknown *codename.UnknownCategoryError
			if !errors.As(err, &unknown) {
				t.Fatalf("Parse(%q) error = %v, want *UnknownCategoryError", tt.in, err)
			}
			if unknown.Got != tt.in {
				t.Errorf("Got = %q, want %q", unknown.Got, tt.in)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.in) {
				t.Errorf("message %q does not quote the input %q", msg, tt.in)
			}
			for _, name := range codename.Categories() {
				if !strings.Contains(msg, name) {
					t.Errorf("message %q does not name category %q", msg, name)
				}
			}
		})
	}
}

func TestUnknownCategoryErrorMessage(t *testing.T) {
	err := &codename.UnknownCategoryError{Got: "plants"}
	got := err.Error()
	want := `unknown category "plants": valid categories are animals, science, space`
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestMustParse(t *testing.T) {
	if got := codename.MustParse(" Science ").Name(); got != "science" {
		t.Errorf("MustParse(\" Science \").Name() = %q, want %q", got, "science")
	}
	defer func() {
		r := recover()
		err, ok := r.(error)
		var unknown *codename.UnknownCategoryError
		if !ok || !errors.As(err, &unknown) {
			t.Errorf("MustParse(\"plants\") panicked with %v, want *UnknownCategoryError", r)
		}
	}()
	codename.MustParse("plants")
}

func TestCategories(t *testing.T) {
	want := []string{"animals", "science", "space"}
	got := codename.Categories()
	if !slices.Equal(got, want) {
		t.Fatalf("Categories() = %q, want %q", got, want)
	}
	got[0] = "changed by the caller"
	if again := codename.Categories(); !slices.Equal(again, want) {
		t.Errorf("Categories() after the caller changed an earlier result = %q, want %q", again, want)
	}
	if !slices.Contains(want, codename.Default) {
		t.Errorf("Default %q is not one of %q", codename.Default, want)
	}
	for _, name := range want {
		if got := codename.MustParse(name).Name(); got != name {
			t.Errorf("MustParse(%q).Name() = %q", name, got)
		}
	}
}

// picks returns an intn that answers with vals in turn and fails the test
// if a value is out of range for the n it is asked for, or if it is asked
// more often than there are values.
func picks(t *testing.T, vals ...int) func(int) int {
	t.Helper()
	return func(n int) int {
		t.Helper()
		if len(vals) == 0 {
			t.Fatalf("intn(%d) called more often than expected", n)
		}
		v := vals[0]
		vals = vals[1:]
		if n <= 0 || v >= n {
			t.Fatalf("intn(%d) asked, but the test wants to answer %d", n, v)
		}
		return v
	}
}

func TestCodename(t *testing.T) {
	tests := []struct {
		name     string
		category string
		picks    []int // noun index, then adjective index among those sharing its initial
		want     string
	}{
		{name: "first animal, first A adjective", category: "animals", picks: []int{0, 0}, want: "Agile Albatross"},
		{name: "badger", category: "animals", picks: []int{1, 2}, want: "Bright Badger"},
		{name: "curie", category: "science", picks: []int{4, 2}, want: "Curious Curie"},
		{name: "last scientist", category: "science", picks: []int{37, 2}, want: "Wandering Wu"},
		{name: "zenith", category: "space", picks: []int{31, 2}, want: "Zesty Zenith"},
		{name: "lunar luna", category: "space", picks: []int{14, 2}, want: "Lunar Luna"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := codename.MustParse(tt.category).Codename(picks(t, tt.picks...))
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHas(t *testing.T) {
	tests := []struct {
		name     string
		category string
		in       string
		want     bool
	}{
		{name: "own noun", category: "animals", in: "Bright Badger", want: true},
		{name: "noun of another category", category: "science", in: "Bright Badger", want: false},
		{name: "any adjective", category: "space", in: "Quirky Titan", want: true},
		{name: "noun alone", category: "animals", in: "Badger", want: false},
		{name: "lower-case noun", category: "animals", in: "Bright badger", want: false},
		{name: "extra word", category: "animals", in: "Bright Badger Two", want: false},
		{name: "empty", category: "animals", in: "", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := codename.MustParse(tt.category).Has(tt.in); got != tt.want {
				t.Errorf("%s.Has(%q) = %v, want %v", tt.category, tt.in, got, tt.want)
			}
		})
	}
}

func TestCategoryOf(t *testing.T) {
	for in, want := range map[string]string{
		"Bright Badger": "animals",
		"Quirky Titan":  "space",
		"Badger":        "",
		"Bright badger": "",
		"":              "",
	} {
		if got := codename.CategoryOf(in); got != want {
			t.Errorf("CategoryOf(%q) = %q, want %q", in, got, want)
		}
	}
	for _, name := range codename.Categories() {
		c := codename.MustParse(name)
		if got := codename.CategoryOf(c.Codename(func(int) int { return 0 })); got != name {
			t.Errorf("CategoryOf(a codename of %s) = %q", name, got)
		}
	}
}

// TestCodenameEveryNoun walks every noun of every category and checks that
// the name is two capitalised words whose initials match.
func TestCodenameEveryNoun(t *testing.T) {
	for _, name := range codename.Categories() {
		t.Run(name, func(t *testing.T) {
			c := codename.MustParse(name)
			var count int
			c.Codename(func(n int) int {
				if count == 0 {
					count = n
				}
				return 0
			})
			if count == 0 {
				t.Fatal("category has no nouns")
			}
			seen := make(map[string]bool)
			for i := range count {
				// The adjective pick is the last valid index, so that
				// every branch sees the far end of its list too.
				calls := 0
				got := c.Codename(func(n int) int {
					calls++
					if calls == 1 {
						if n != count {
							t.Fatalf("noun list length changed from %d to %d", count, n)
						}
						return i
					}
					return n - 1
				})
				words := strings.Fields(got)
				if len(words) != 2 || strings.Join(words, " ") != got {
					t.Fatalf("Codename = %q, want two words separated by one space", got)
				}
				adj, noun := words[0], words[1]
				for _, other := range codename.Categories() {
					if got, want := codename.MustParse(other).Has(got), other == name; got != want {
						t.Errorf("%s.Has(%q) = %v, want %v", other, words, got, want)
					}
				}
				if seen[noun] {
					t.Errorf("noun %q appears twice", noun)
				}
				seen[noun] = true
				if r, _ := utf8.DecodeRuneInString(adj); r < 'A' || r > 'Z' {
					t.Errorf("adjective in %q does not start with a capital ASCII letter", got)
				}
				if adj[0] != noun[0] {
					t.Errorf("Codename = %q, want the adjective to share the noun's initial", got)
				}
			}
		})
	}
}

func TestCodenameRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2)) // seeded, so a failure repeats
	for _, name := range codename.Categories() {
		c := codename.MustParse(name)
		for range 1000 {
			got := c.Codename(r.IntN)
			if words := strings.Fields(got); len(words) != 2 || words[0][0] != words[1][0] {
				t.Fatalf("%s: Codename = %q, want two alliterating words", name, got)
			}
		}
	}
}

// sink keeps results on the heap, as they are in the service, so that the
// compiler cannot build them in a stack buffer and hide the allocation.
var sink string

func TestCodenameAllocs(t *testing.T) {
	c := codename.MustParse("science")
	got := testing.AllocsPerRun(100, func() { sink = c.Codename(rand.IntN) })
	if got != 0 {
		t.Errorf("Codename allocates %v times per call, want none", got)
	}
}

func BenchmarkCodename(b *testing.B) {
	c := codename.MustParse(codename.Default)
	b.ReportAllocs()
	for b.Loop() {
		sink = c.Codename(rand.IntN)
	}
}

// FuzzParse checks that Parse never panics and either returns the category
// whose name matches the trimmed input (ignoring case), or the default for
// blank input, or an *UnknownCategoryError for anything else.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "animals", " Science\t", "SPACE", "plants", "animals science", "\x00", "ſcience"} {
		f.Add(s)
	}
	names := codename.Categories()
	f.Fuzz(func(t *testing.T, s string) {
		c, err := codename.Parse(s)
		trimmed := strings.TrimSpace(s)
		if err != nil {
			var unknown *codename.UnknownCategoryError
			if !errors.As(err, &unknown) {
				t.Fatalf("Parse(%q) error = %T %v, want *UnknownCategoryError", s, err, err)
			}
			if unknown.Got != s {
				t.Errorf("Got = %q, want %q", unknown.Got, s)
			}
			if trimmed == "" {
				t.Errorf("Parse(%q) refused blank input, want the default", s)
			}
			for _, name := range names {
				if strings.EqualFold(name, trimmed) {
					t.Errorf("Parse(%q) refused a match for %q", s, name)
				}
			}
			return
		}
		if !slices.Contains(names, c.Name()) {
			t.Fatalf("Parse(%q).Name() = %q, not one of %q", s, c.Name(), names)
		}
		want := trimmed
		if want == "" {
			want = codename.Default
		}
		if !strings.EqualFold(c.Name(), want) {
			t.Errorf("Parse(%q).Name() = %q, want a case-insensitive match for %q", s, c.Name(), want)
		}
	})
}
