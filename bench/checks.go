package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// h2load sees only HTTP statuses, and a gRPC or gRPC-Web error still
// answers 200: so before any load, a check makes a few of the calls the
// load will make and reads real answers from them, and the server's
// counters vouch for every call after each run (measureH2load). Issue 14
// point 4 adds the calls a browser's typed client makes, gRPC-Web and
// Connect unary, on the gRPC path through HAProxy to the gateway, which
// answers them with connect-go; h2load sends them as it sends gRPC, a POST
// with fixed headers and a body file.

// grpcWebHeaders make h2load's request a binary gRPC-Web call, as
// connect-web and grpc-web send it. Its body is the same length-prefixed
// message as a gRPC call's (bodies.grpc).
var grpcWebHeaders = []string{"content-type: application/grpc-web+proto", "x-grpc-web: 1"}

// connectHeaders make h2load's request a Connect unary call with a JSON
// body, as connect-web sends it by default.
var connectHeaders = []string{"content-type: application/json", "connect-protocol-version: 1"}

// h2cTransport speaks cleartext HTTP/2 with prior knowledge, as h2load
// does and as HAProxy's cleartext listener takes it, so that a check takes
// the path the load takes.
func h2cTransport() *http.Transport {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Transport{Protocols: &p}
}

// checkCalls makes a few calls to url as h2load would make them: a GET, or
// a POST of bodyFile, with headers; it hands each answer to read, which
// must find a codename in it.
func checkCalls(ctx context.Context, url string, headers []string, bodyFile string,
	read func(http.Header, []byte) (*codenamev1.NameResult, error)) error {
	method, body := http.MethodGet, []byte(nil)
	if bodyFile != "" {
		b, err := os.ReadFile(bodyFile)
		if err != nil {
			return err
		}
		method, body = http.MethodPost, b
	}
	client := &http.Client{Transport: h2cTransport(), Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	for range 3 {
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Set(k, strings.TrimSpace(v))
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, url, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %s (%s): %s %q", method, url, req.Header.Get("Content-Type"), resp.Status, b)
		}
		res, err := read(resp.Header, b)
		if err != nil {
			return fmt.Errorf("%s %s (%s): %w", method, url, req.Header.Get("Content-Type"), err)
		}
		if res.GetName() == "" {
			return fmt.Errorf("%s %s (%s): empty name", method, url, req.Header.Get("Content-Type"))
		}
	}
	return nil
}

// checkREST makes a few REST calls to url (GET): each must answer 200 with
// a JSON NameResult.
func checkREST(ctx context.Context, url string) error {
	return checkCalls(ctx, url, nil, "", readREST)
}

// checkGRPCWeb makes a few binary gRPC-Web calls to url: each must answer
// 200 with one message and a trailer frame saying grpc-status 0.
func checkGRPCWeb(ctx context.Context, url, bodyFile string) error {
	return checkCalls(ctx, url, grpcWebHeaders, bodyFile, readGRPCWeb)
}

// checkConnect makes a few Connect unary JSON calls to url: each must
// answer 200 with a JSON NameResult.
func checkConnect(ctx context.Context, url, bodyFile string) error {
	return checkCalls(ctx, url, connectHeaders, bodyFile, readConnect)
}

// readGRPCWeb decodes a unary binary gRPC-Web answer: length-prefixed
// frames, a message (flag 0) then the trailers (flag 0x80, HTTP/1-style
// header lines). An error may come instead in the headers alone
// (Trailers-Only). Anything but exactly one message and grpc-status 0 is an
// error, so that an answer from the wrong place cannot pass for a call.
func readGRPCWeb(h http.Header, body []byte) (*codenamev1.NameResult, error) {
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err != nil || !strings.HasPrefix(mt, "application/grpc-web") {
		return nil, fmt.Errorf("content-type %q is not gRPC-Web", h.Get("Content-Type"))
	}
	if s := h.Get("Grpc-Status"); s != "" && s != "0" {
		return nil, fmt.Errorf("grpc-status %s in the headers: %s", s, h.Get("Grpc-Message"))
	}
	var (
		res      *codenamev1.NameResult
		trailers http.Header
	)
	for len(body) > 0 {
		if len(body) < 5 {
			return nil, fmt.Errorf("a frame cut short: %d bytes left", len(body))
		}
		flag, n := body[0], binary.BigEndian.Uint32(body[1:5])
		if uint64(len(body)-5) < uint64(n) {
			return nil, fmt.Errorf("a frame of %d bytes with %d left", n, len(body)-5)
		}
		payload := body[5 : 5+n]
		body = body[5+n:]
		switch {
		case trailers != nil:
			return nil, errors.New("a frame after the trailers")
		case flag&0x80 != 0:
			t, err := parseTrailers(payload)
			if err != nil {
				return nil, err
			}
			trailers = t
		case flag != 0:
			return nil, fmt.Errorf("a message with flag %#x (compressed, though none was asked for)", flag)
		case res != nil:
			return nil, errors.New("more than one message in a unary answer")
		default:
			res = &codenamev1.NameResult{}
			if err := proto.Unmarshal(payload, res); err != nil {
				return nil, fmt.Errorf("message: %w", err)
			}
		}
	}
	if trailers == nil {
		return nil, errors.New("no trailer frame")
	}
	if s := trailers.Get("Grpc-Status"); s != "0" {
		return nil, fmt.Errorf("grpc-status %q in the trailers: %s", s, trailers.Get("Grpc-Message"))
	}
	if res == nil {
		return nil, errors.New("grpc-status 0 with no message")
	}
	return res, nil
}

// parseTrailers reads a gRPC-Web trailer frame: header lines ending in
// CRLF, with no blank line after the last.
func parseTrailers(b []byte) (http.Header, error) {
	h := http.Header{}
	for line := range strings.SplitSeq(strings.TrimSuffix(string(b), "\r\n"), "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" {
			return nil, fmt.Errorf("trailer line %q is no header", line)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return h, nil
}

// readConnect decodes a Connect unary JSON answer.
func readConnect(h http.Header, body []byte) (*codenamev1.NameResult, error) {
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, fmt.Errorf("content-type %q is not Connect JSON", h.Get("Content-Type"))
	}
	return readREST(h, body)
}

// readREST decodes a REST answer: a NameResult in protobuf's JSON mapping.
func readREST(_ http.Header, body []byte) (*codenamev1.NameResult, error) {
	res := &codenamev1.NameResult{}
	if err := protojson.Unmarshal(body, res); err != nil {
		return nil, fmt.Errorf("%q: %w", body, err)
	}
	return res, nil
}
