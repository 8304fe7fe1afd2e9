// Package codename makes memorable codenames such as "Bold Badger" or
// "Curious Curie". It is the domain core of the service and knows nothing of
// protobuf or gRPC, so it can be tested and benchmarked on its own.
package codename

import (
	"fmt"
	"slices"
	"strings"
)

// Default is the category used when a request names none.
const Default = "animals"

// Category is a validated codename category.
type Category struct {
	name  string
	nouns []string
	// names holds, for each noun, every codename made of it, built once
	// so that Codename allocates nothing: a few hundred short strings.
	names [][]string
}

// Name returns the canonical (lower-case) name of the category.
func (c Category) Name() string { return c.name }

// Codename returns a new codename of the category. intn must return a
// uniformly random int in [0, n); math/rand/v2's IntN is the usual choice,
// and tests pass a deterministic one.
//
// The adjective shares the noun's initial where the word list allows,
// because alliterative names are easier to remember and say out loud.
func (c Category) Codename(intn func(n int) int) string {
	names := c.names[intn(len(c.names))]
	return names[intn(len(names))]
}

// withNames fills in each category's names: for each noun, the adjectives
// that share its initial (all of them if none does), each before the noun.
func withNames(cats []Category) []Category {
	for ci, c := range cats {
		cats[ci].names = make([][]string, len(c.nouns))
		for i, noun := range c.nouns {
			choices := adjectivesByInitial[noun[0]]
			if len(choices) == 0 {
				choices = adjectives
			}
			for _, adj := range choices {
				cats[ci].names[i] = append(cats[ci].names[i], adj+" "+noun)
			}
		}
	}
	return cats
}

// Has reports whether name is a codename this category could have made,
// which lets tests and clients tell which category a name came from.
func (c Category) Has(name string) bool {
	_, noun, ok := strings.Cut(name, " ")
	return ok && slices.Contains(c.nouns, noun)
}

// CategoryOf names the category that could have made name, or returns ""
// if none could: no noun is in two categories, so there is at most one.
func CategoryOf(name string) string {
	for _, c := range categories {
		if c.Has(name) {
			return c.name
		}
	}
	return ""
}

// UnknownCategoryError reports a category that does not exist. Its message
// names the valid categories so that a caller can correct the request.
type UnknownCategoryError struct {
	Got string
}

func (e *UnknownCategoryError) Error() string {
	// Only the start of what was sent is quoted: an error must stay small
	// enough for every proxy's header buffer (gRPC carries it in a header).
	return fmt.Sprintf("unknown category %.64q: valid categories are %s", e.Got, strings.Join(Categories(), ", "))
}

// Parse returns the category called s, ignoring case and surrounding space.
// An empty s means the Default category.
func Parse(s string) (Category, error) {
	name := strings.TrimSpace(s)
	if name == "" {
		name = Default
	}
	for _, c := range categories {
		if strings.EqualFold(c.name, name) {
			return c, nil
		}
	}
	return Category{}, &UnknownCategoryError{Got: s}
}

// MustParse is Parse for names known to be valid; it panics otherwise.
func MustParse(s string) Category {
	c, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return c
}

// Categories returns the names of all categories, in a stable order.
func Categories() []string {
	names := make([]string, len(categories))
	for i, c := range categories {
		names[i] = c.name
	}
	return names
}
