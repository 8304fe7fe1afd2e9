package gateway

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// gRPC-Web's text form is its binary form in base64, for browsers of old
// that could not read binary responses as they arrived. connect-go (like
// vanguard) speaks only the binary form, so this file does the base64 on
// either side of it and leaves the framing to connect-go.

// isWebText tells whether r is a gRPC-Web call in its text form.
func isWebText(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/grpc-web-text" || mt == "application/grpc-web-text+proto"
}

// serveWebText decodes the request body, hands the call to rpc as binary
// gRPC-Web, and encodes what rpc writes. The body is read whole first: a
// browser sends it whole anyway (the text form is unary or server stream),
// and base64 chunks may each end in padding, which a streaming decoder of
// the standard library does not accept. Its size is bounded by limit, in
// decoded bytes.
func serveWebText(rpc http.Handler, w http.ResponseWriter, r *http.Request, limit int64) {
	text, err := io.ReadAll(io.LimitReader(r.Body, (limit+2)/3*4+1))
	if err == nil && int64(len(text)) > (limit+2)/3*4 {
		err = fmt.Errorf("the request body is over %d bytes", limit)
	}
	var body []byte
	if err == nil {
		body, err = decodeChunkedBase64(text)
	}
	if err != nil {
		// In gRPC-Web's own form, so that the client reads the status.
		w.Header().Set("Content-Type", "application/grpc-web-text+proto")
		w.Header().Set("Grpc-Status", "3") // INVALID_ARGUMENT
		w.Header().Set("Grpc-Message", "malformed gRPC-Web text body: "+err.Error())
		w.WriteHeader(http.StatusOK)
		return
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	r2.Header.Set("Content-Type", "application/grpc-web+proto")
	tw := &webTextWriter{ResponseWriter: w}
	rpc.ServeHTTP(tw, r2)
	tw.Flush()
}

// decodeChunkedBase64 decodes standard base64 that may be several encoded
// chunks one after another, each with its own padding.
func decodeChunkedBase64(text []byte) ([]byte, error) {
	text = bytes.Join(bytes.Fields(text), nil)
	if len(text)%4 != 0 {
		return nil, errors.New("base64 length is not a multiple of 4")
	}
	out := make([]byte, 0, len(text)/4*3)
	for len(text) > 0 {
		// Up to the end of the first padded group, or all of it.
		n := len(text)
		if i := bytes.IndexByte(text, '='); i >= 0 {
			n = (i/4 + 1) * 4
		}
		chunk := make([]byte, base64.StdEncoding.DecodedLen(n))
		m, err := base64.StdEncoding.Decode(chunk, text[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, chunk[:m]...)
		text = text[n:]
	}
	return out, nil
}

// webTextWriter base64-encodes a binary gRPC-Web response. It encodes
// whole 3-byte groups as they come and pads only what is left when the
// response is flushed, which connect-go does after each message, so that
// each message reaches the browser at once.
type webTextWriter struct {
	http.ResponseWriter
	pending     []byte
	wroteHeader bool
}

func (t *webTextWriter) WriteHeader(code int) {
	if t.wroteHeader {
		return
	}
	t.wroteHeader = true
	h := t.ResponseWriter.Header()
	if ct := h.Get("Content-Type"); strings.HasPrefix(ct, "application/grpc-web") {
		h.Set("Content-Type", strings.Replace(ct, "application/grpc-web", "application/grpc-web-text", 1))
	}
	h.Del("Content-Length")
	t.ResponseWriter.WriteHeader(code)
}

func (t *webTextWriter) Write(b []byte) (int, error) {
	t.WriteHeader(http.StatusOK)
	t.pending = append(t.pending, b...)
	n := len(t.pending) / 3 * 3
	if n == 0 {
		return len(b), nil
	}
	if _, err := t.ResponseWriter.Write([]byte(base64.StdEncoding.EncodeToString(t.pending[:n]))); err != nil {
		return 0, err
	}
	t.pending = append(t.pending[:0], t.pending[n:]...)
	return len(b), nil
}

func (t *webTextWriter) Flush() {
	t.WriteHeader(http.StatusOK) // a flush would send the headers unchanged
	if len(t.pending) > 0 {
		_, _ = t.ResponseWriter.Write([]byte(base64.StdEncoding.EncodeToString(t.pending)))
		t.pending = t.pending[:0]
	}
	_ = http.NewResponseController(t.ResponseWriter).Flush()
}

func (t *webTextWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }
