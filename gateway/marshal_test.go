package gateway

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
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

// TestStreamLineBytes: a stream's line, {"result": ...} or {"error":
// ...}, comes out byte for byte as JSONPb's own map encoding makes it,
// HTML escapes included.
func TestStreamLineBytes(t *testing.T) {
	c := compactJSON{&runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{EmitUnpopulated: true}}}
	for _, s := range []string{"Bold Badger", "", `<script>&"quoted" \ back`, "line\u2028sep\u2029 é ☃", "\x01\t\n"} {
		for _, v := range []any{
			map[string]proto.Message{"result": &codenamev1.NameResult{Name: s}},
			map[string]any{"result": &codenamev1.NameResult{Name: s}},
			map[string]proto.Message{"error": status.New(codes.InvalidArgument, s).Proto()},
		} {
			want, err := c.JSONPb.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(compactInPlace(want)) {
				t.Errorf("Marshal(%v) = %s, want %s", v, got, want)
			}
		}
	}
}

// BenchmarkStreamLine is one line of a stream, as every transport writes
// it: the runtime's map encoding (jsonpb) against the gateway's (compact).
func BenchmarkStreamLine(b *testing.B) {
	c := compactJSON{&runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{EmitUnpopulated: true}}}
	line := map[string]proto.Message{"result": &codenamev1.NameResult{Name: "Bold Badger"}}
	b.Run("jsonpb", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.JSONPb.Marshal(line); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("compact", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Marshal(line); err != nil {
				b.Fatal(err)
			}
		}
	})
}
