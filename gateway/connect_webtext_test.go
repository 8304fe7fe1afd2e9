package gateway_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/api/codename/v1/codenamev1connect"
	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/server/codename"
)

// webTextReader reads a gRPC-Web text body as it arrives: base64 in groups
// of four characters, each decoded on its own, so that padding between
// flushed chunks is read as a browser's client reads it.
type webTextReader struct {
	body    io.Reader
	decoded []byte
}

func (r *webTextReader) Read(p []byte) (int, error) {
	for len(r.decoded) == 0 {
		group := make([]byte, 4)
		if _, err := io.ReadFull(r.body, group); err != nil {
			return 0, err
		}
		b, err := base64.StdEncoding.DecodeString(string(group))
		if err != nil {
			return 0, err
		}
		r.decoded = b
	}
	n := copy(p, r.decoded)
	r.decoded = r.decoded[n:]
	return n, nil
}

// webFrame reads one gRPC-Web frame: its flags byte and its payload.
func webFrame(t *testing.T, r io.Reader) (byte, []byte) {
	t.Helper()
	head := make([]byte, 5)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatalf("frame header: %v", err)
	}
	payload := make([]byte, binary.BigEndian.Uint32(head[1:]))
	if _, err := io.ReadFull(r, payload); err != nil {
		t.Fatalf("frame payload: %v", err)
	}
	return head[0], payload
}

// postWebText sends req as a gRPC-Web text call.
func postWebText(t *testing.T, url string, c *http.Client, req *codenamev1.NameRequest) *http.Response {
	t.Helper()
	msg, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
	body := base64.StdEncoding.EncodeToString(append(frame, msg...))
	hreq, err := http.NewRequestWithContext(t.Context(), "POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hreq.Header.Set("Content-Type", "application/grpc-web-text")
	hreq.Header.Set("X-Grpc-Web", "1")
	resp, err := c.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/grpc-web-text+proto" {
		t.Fatalf("%s, Content-Type %q; want 200 application/grpc-web-text+proto", resp.Status, resp.Header.Get("Content-Type"))
	}
	return resp
}

func TestGRPCWebText(t *testing.T) {
	ts := startConnectServer(t, gateway.Options{})
	unary := ts.URL + codenamev1connect.CodenameCreatorGetCodenameProcedure
	t.Run("unary", func(t *testing.T) {
		body := &webTextReader{body: postWebText(t, unary, ts.Client(), &codenamev1.NameRequest{Category: "science"}).Body}
		flags, payload := webFrame(t, body)
		var res codenamev1.NameResult
		if err := proto.Unmarshal(payload, &res); flags != 0 || err != nil {
			t.Fatalf("first frame: flags %#x, %v; want a message", flags, err)
		}
		if got := codename.CategoryOf(res.GetName()); got != "science" {
			t.Errorf("%q is of category %q, want science", res.GetName(), got)
		}
		flags, trailer := webFrame(t, body)
		if flags != 0x80 || !bytes.Contains(bytes.ToLower(trailer), []byte("grpc-status: 0")) {
			t.Errorf("trailer frame: flags %#x %q, want grpc-status: 0", flags, trailer)
		}
	})
	t.Run("unknown category", func(t *testing.T) {
		// Trailers-only: the status in the headers, and no body.
		resp := postWebText(t, unary, ts.Client(), &codenamev1.NameRequest{Category: "nonsense"})
		rest, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.Get("Grpc-Status") != "3" || !strings.Contains(resp.Header.Get("Grpc-Message"), "science") || len(rest) != 0 {
			t.Errorf("grpc-status %q, grpc-message %q, body %q; want 3 naming the categories, no body", resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message"), rest)
		}
	})
	t.Run("server stream", func(t *testing.T) {
		resp := postWebText(t, ts.URL+codenamev1connect.CodenameCreatorKeepGettingCodenamesProcedure, ts.Client(), &codenamev1.NameRequest{Category: "space"})
		body := &webTextReader{body: resp.Body}
		for i := range 3 {
			flags, payload := webFrame(t, body)
			var res codenamev1.NameResult
			if err := proto.Unmarshal(payload, &res); flags != 0 || err != nil {
				t.Fatalf("frame %d: flags %#x, %v; want a message", i, flags, err)
			}
			if got := codename.CategoryOf(res.GetName()); got != "space" {
				t.Errorf("frame %d: %q is of category %q, want space", i, res.GetName(), got)
			}
		}
	})
	t.Run("not base64", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), "POST", unary, strings.NewReader("%%%%"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/grpc-web-text")
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Grpc-Status") != "3" || !strings.Contains(resp.Header.Get("Grpc-Message"), "base64") {
			t.Errorf("grpc-status %q, grpc-message %q; want 3 and a message about base64", resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message"))
		}
	})
}
