package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
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
	b, err := c.JSONPb.Marshal(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, fmt.Errorf("compact JSON: %w", err)
	}
	return buf.Bytes(), nil
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
