package codename

import "testing"

// TestWordLists checks the invariants Codename and the service's callers
// rely on: names are capitalised ASCII, no word is listed twice, and no noun
// belongs to two categories, so a name tells which category it came from.
func TestWordLists(t *testing.T) {
	capitalised := func(w string) bool { return w != "" && w[0] >= 'A' && w[0] <= 'Z' }
	owner := make(map[string]string)
	for _, c := range categories {
		if len(c.nouns) == 0 {
			t.Errorf("category %q has no nouns", c.name)
		}
		for _, n := range c.nouns {
			if !capitalised(n) {
				t.Errorf("%s: noun %q does not start with a capital ASCII letter", c.name, n)
			}
			if prev, ok := owner[n]; ok {
				t.Errorf("noun %q is in both %q and %q", n, prev, c.name)
			}
			owner[n] = c.name
		}
	}
	seen := make(map[string]bool)
	for _, a := range adjectives {
		if !capitalised(a) {
			t.Errorf("adjective %q does not start with a capital ASCII letter", a)
		}
		if seen[a] {
			t.Errorf("adjective %q is listed twice", a)
		}
		seen[a] = true
	}
}
