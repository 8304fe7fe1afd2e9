package gateway

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/proto"
)

// compactJSON is the runtime's JSON marshaler with its output compacted.
// protojson adds random spaces to its output on purpose, a different choice
// in each build (so that nobody compares its bytes), and the README, the
// golden files and any client that caches or diffs answers would see the
// bytes change from one release to the next. Compacting keeps the JSON
// mapping exactly and drops only the insignificant whitespace.
type compactJSON struct {
	*runtime.JSONPb
}

func (c compactJSON) Marshal(v any) ([]byte, error) {
	if m, ok := v.(proto.Message); ok {
		// What JSONPb.Marshal writes for a message, without the copy it
		// makes into a buffer of its own; compacted in place, since the
		// bytes are this call's alone.
		b, err := c.MarshalOptions.Marshal(m)
		if err != nil {
			return nil, err
		}
		return compactInPlace(b), nil
	}
	if key, m, ok := streamLine(v); ok {
		return c.marshalLine(key, m)
	}
	b, err := c.JSONPb.Marshal(v)
	if err != nil {
		return nil, err
	}
	return compactInPlace(b), nil
}

// streamLine recognises a line of a stream, {"result": msg} or {"error":
// status}, as the runtime and the browser transports hand them over.
func streamLine(v any) (key string, m proto.Message, ok bool) {
	switch line := v.(type) {
	case map[string]proto.Message:
		if len(line) == 1 {
			for key, m = range line {
			}
			ok = m != nil
		}
	case map[string]any:
		if len(line) == 1 {
			var value any
			for key, value = range line {
			}
			m, ok = value.(proto.Message)
			ok = ok && m != nil
		}
	}
	if ok && !plainKey(key) {
		return "", nil, false
	}
	return key, m, ok
}

// marshalLine writes {"key":msg} as JSONPb writes such a map, without its
// reflection and its second map: json.Marshal of the message's JSON as a
// json.RawMessage, which escapes <, >, & and U+2028/9 as HTML wants them
// (json.HTMLEscape, the same escapes), under the key.
func (c compactJSON) marshalLine(key string, m proto.Message) ([]byte, error) {
	b, err := c.MarshalOptions.Marshal(m)
	if err != nil {
		return nil, err
	}
	b = compactInPlace(b)
	buf := bytes.NewBuffer(make([]byte, 0, len(b)+len(key)+8))
	buf.WriteString(`{"` + key + `":`)
	json.HTMLEscape(buf, b)
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// plainKey reports whether key needs no escaping as a JSON string.
func plainKey(key string) bool {
	for _, c := range []byte(key) {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && c != '_' {
			return false
		}
	}
	return key != ""
}

// compactInPlace drops the white space outside strings from b, a valid
// JSON text, and returns what is left, in b's own array. It is
// json.Compact for a marshaler's output (TestCompactInPlace holds it to
// that), minus the validation and the second buffer that a per-request
// answer would pay for: a JSON string holds no raw white space but the
// space itself, so a string is the only place a space can stay.
func compactInPlace(b []byte) []byte {
	out := b[:0]
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		}
		out = append(out, c)
	}
	return out
}

// NewEncoder writes each value compacted and nothing after it, like every
// other answer of the gateway: the runtime encodes only /healthz's answer
// this way, which would otherwise alone end in a newline.
func (c compactJSON) NewEncoder(w io.Writer) runtime.Encoder {
	return runtime.EncoderFunc(func(v any) error {
		b, err := c.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
}
