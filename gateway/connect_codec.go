package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// strictJSON is connect-go's JSON codec with unknown fields refused, as on
// the REST routes: {"categroy": "science"} is INVALID_ARGUMENT, not a call
// with the default category. Its output is compact, the same bytes from
// every build, as the REST routes' is (see compactJSON).
type strictJSON struct{}

func (strictJSON) Name() string { return "json" }

func (strictJSON) Marshal(m any) ([]byte, error) {
	b, err := protojson.Marshal(m.(proto.Message))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (strictJSON) Unmarshal(b []byte, m any) error {
	if len(b) == 0 {
		return errors.New("an empty body is not a JSON object: send {} for a message with no fields")
	}
	if err := protojson.Unmarshal(b, m.(proto.Message)); err != nil {
		// The same message in every build (see stable).
		return errors.New(strings.ReplaceAll(err.Error(), protoPrefixNBSP, "proto: "))
	}
	return nil
}
