package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseOrigins(t *testing.T) {
	got, err := parseOrigins(" https://app.example.com, http://localhost:3000 ,")
	if want := []string{"https://app.example.com", "http://localhost:3000"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("parseOrigins = %q, %v; want %q", got, err, want)
	}
	if got, err := parseOrigins(""); err != nil || len(got) != 0 {
		t.Errorf("parseOrigins(\"\") = %q, %v; want none", got, err)
	}
	for _, bad := range []string{"app.example.com", "https://app.example.com/", "https://App.example.com", "ftp://x", "https://u@x", "*"} {
		if _, err := parseOrigins(bad); err == nil || !strings.Contains(err.Error(), "scheme://host") {
			t.Errorf("parseOrigins(%q): %v, want an error saying what an origin looks like", bad, err)
		}
	}
}
