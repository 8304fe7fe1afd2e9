package gateway

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestCompactInPlace holds compactInPlace to json.Compact on JSON texts
// with spaces where a marshaler may put them, and in strings, escapes
// and all.
func TestCompactInPlace(t *testing.T) {
	for _, in := range []string{
		`{}`,
		`{"name": "Bold Badger"}`,
		"{\n  \"a\" : [ 1 , 2 ],\t\"b\" :{ \"c\" : null }\r\n}",
		`{"s": " a : b ", "t": "quote \" inside", "u": "back\\", "v": " "}`,
		`{"e": "\\\" ", "f": "\u00e9 x"}`,
		`[ "x" , " y " , true , false , -1.5e3 ]`,
		` "only a string " `,
	} {
		var want bytes.Buffer
		if err := json.Compact(&want, []byte(in)); err != nil {
			t.Fatalf("json.Compact(%q): %v", in, err)
		}
		if got := compactInPlace([]byte(in)); string(got) != want.String() {
			t.Errorf("compactInPlace(%q) = %q, want %q", in, got, want.String())
		}
	}
}

// FuzzCompactInPlace: on any valid JSON, compactInPlace agrees with
// json.Compact.
func FuzzCompactInPlace(f *testing.F) {
	f.Add(`{"name": "Bold Badger"}`)
	f.Add(`{"a" : [ "\" x" , 1 ] }`)
	f.Fuzz(func(t *testing.T, in string) {
		if !json.Valid([]byte(in)) {
			t.Skip()
		}
		var want bytes.Buffer
		if err := json.Compact(&want, []byte(in)); err != nil {
			t.Fatal(err)
		}
		if got := compactInPlace([]byte(in)); string(got) != want.String() {
			t.Errorf("compactInPlace(%q) = %q, want %q", in, got, want.String())
		}
	})
}
