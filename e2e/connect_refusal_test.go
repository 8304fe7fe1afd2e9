package e2e

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/api/codename/v1/codenamev1connect"
)

// The refusals HAProxy makes itself (no key, over the rate limit, a
// non-canonical path) must reach a browser's typed client as errors of its
// own protocol, readable by a page from an allowed origin.

// refusalLimit is the rate limit of these tests: room for the refusals each
// subtest asks for before it goes over.
const refusalLimit = 12

// heldShare is the number of requests an address may have in progress
// (CODENAME_STREAMS_PER_SOURCE) in TestConnectRefusals.
const heldShare = 3

// secondOrigin is allowed too, written after a comma and a space, as an
// operator may write the list.
const secondOrigin = "https://second.example:8443"

// The methods' paths with their first letter percent-escaped: the same
// method to the gateway, which decodes paths, and so refused by HAProxy.
const (
	escapedGetCodename          = "/codename.v1.CodenameCreator/%47etCodename"
	escapedKeepGettingCodenames = "/codename.v1.CodenameCreator/%4beepGettingCodenames"
)

// TestConnectRefusals: HAProxy's own refusals of gRPC-Web and Connect
// calls come in each protocol's form, with the gRPC status the gRPC
// refusals carry, and with the gateway's CORS headers for allowed origins
// only; REST's refusals keep the JSON shape and get no CORS headers.
func TestConnectRefusals(t *testing.T) {
	s := start(t, apiKey(testKey), withEnv("CODENAME_RATE_LIMIT="+strconv.Itoa(refusalLimit), "CODENAME_STREAMS_PER_SOURCE="+strconv.Itoa(heldShare), "CODENAME_CORS_ORIGINS="+corsOrigin+", "+secondOrigin))
	// What the gateway exposes to an allowed origin's page on its own
	// answers: a refusal must expose the same.
	gatewayExposes := exposedByGateway(t, s)

	// Each subtest calls from a loopback address of its own, so that each
	// has the whole rate limit.
	from := 20
	for _, tp := range []transport{transports[0], transports[1]} {
		for _, p := range browserProtocols {
			from++
			t.Run(tp.name+"/"+p.name, func(t *testing.T) {
				rec := &headerRecorder{}
				hc := clientFrom(t, s, tp, from, rec)
				client := codenamev1connect.NewCodenameCreatorClient(hc, tp.url(s, ""), p.opts...)
				// A refused Connect stream's code comes from the HTTP status
				// alone (haproxy.cfg says why): 400 reads as Internal, 429
				// as Unavailable.
				streamMalformed, streamLimited := connect.CodeInternal, connect.CodeUnavailable
				if p.name == "gRPC-Web" {
					streamMalformed, streamLimited = connect.CodeInvalidArgument, connect.CodeResourceExhausted
				}

				_, err := client.GetCodename(t.Context(), originRequest(corsOrigin, ""))
				wantRefusal(t, "no key", err, connect.CodeUnauthenticated, "missing or wrong API key")
				wantCORS(t, "no key", rec.last(), corsOrigin, gatewayExposes)

				_, err = client.GetCodename(t.Context(), originRequest(secondOrigin, ""))
				wantRefusal(t, "no key, second origin", err, connect.CodeUnauthenticated, "missing or wrong API key")
				wantCORS(t, "no key, second origin", rec.last(), secondOrigin, gatewayExposes)

				for _, other := range []string{"https://elsewhere.example", corsOrigin + ".evil", "https://second.example"} {
					_, err = client.GetCodename(t.Context(), originRequest(other, ""))
					wantRefusal(t, "no key from "+other, err, connect.CodeUnauthenticated, "missing or wrong API key")
					wantCORS(t, "no key from "+other, rec.last(), "", "")
				}

				escaped := connect.NewClient[codenamev1.NameRequest, codenamev1.NameResult](hc, tp.url(s, escapedGetCodename), p.opts...)
				_, err = escaped.CallUnary(t.Context(), originRequest(corsOrigin, testKey))
				wantRefusal(t, "non-canonical path", err, connect.CodeInvalidArgument, "malformed request")
				wantCORS(t, "non-canonical path", rec.last(), corsOrigin, gatewayExposes)

				streams := connect.NewClient[codenamev1.NameRequest, codenamev1.NameResult](hc, tp.url(s, codenamev1connect.CodenameCreatorKeepGettingCodenamesProcedure), p.opts...)
				err = streamErr(t, streams, originRequest(corsOrigin, ""))
				wantRefusal(t, "stream without a key", err, connect.CodeUnauthenticated, "")
				wantCORS(t, "stream without a key", rec.last(), corsOrigin, gatewayExposes)
				escapedStreams := connect.NewClient[codenamev1.NameRequest, codenamev1.NameResult](hc, tp.url(s, escapedKeepGettingCodenames), p.opts...)
				err = streamErr(t, escapedStreams, originRequest(corsOrigin, testKey))
				wantRefusal(t, "stream on a non-canonical path", err, streamMalformed, "")

				// Calls with the key pass until the limit; the first over it
				// is refused.
				var limited error
				passed := 0
				for limited == nil && passed < 2*refusalLimit {
					res, err := client.GetCodename(t.Context(), originRequest(corsOrigin, testKey))
					if err != nil {
						limited = err
					} else if categoryOf(res.Msg.GetName()) != "science" {
						t.Fatalf("call with the key: %q, want a science codename", res.Msg.GetName())
					} else {
						passed++
					}
				}
				if passed == 0 {
					t.Errorf("no call with the key passed before the limit")
				}
				wantRefusal(t, "over the rate limit", limited, connect.CodeResourceExhausted, "rate limit exceeded")
				wantCORS(t, "over the rate limit", rec.last(), corsOrigin, gatewayExposes)
				_, err = client.GetCodename(t.Context(), originRequest("https://elsewhere.example", testKey))
				wantRefusal(t, "over the rate limit, other origin", err, connect.CodeResourceExhausted, "rate limit exceeded")
				wantCORS(t, "over the rate limit, other origin", rec.last(), "", "")
				err = streamErr(t, streams, originRequest(corsOrigin, testKey))
				wantRefusal(t, "stream over the rate limit", err, streamLimited, "")
				wantCORS(t, "stream over the rate limit", rec.last(), corsOrigin, gatewayExposes)
			})
		}
	}

	t.Run("more in progress than the address's share", func(t *testing.T) {
		rec := &headerRecorder{}
		hc := clientFrom(t, s, transports[1], 32, rec)
		streams := connect.NewClient[codenamev1.NameRequest, codenamev1.NameResult](hc, s.httpsURL(codenamev1connect.CodenameCreatorKeepGettingCodenamesProcedure))
		for i := range heldShare {
			held, err := streams.CallServerStream(t.Context(), originRequest(corsOrigin, testKey))
			if err != nil {
				t.Fatalf("held stream %d: %v", i, err)
			}
			defer held.Close()
			if !held.Receive() {
				t.Fatalf("held stream %d: %v", i, held.Err())
			}
		}
		for _, p := range browserProtocols {
			client := codenamev1connect.NewCodenameCreatorClient(hc, s.httpsURL(""), p.opts...)
			_, err := client.GetCodename(t.Context(), originRequest(corsOrigin, testKey))
			wantRefusal(t, p.name+" with the share of streams held", err, connect.CodeResourceExhausted, "too many requests in progress")
			wantCORS(t, p.name+" with the share of streams held", rec.last(), corsOrigin, gatewayExposes)
		}
	})

	t.Run("gRPC-Web text over HTTP", func(t *testing.T) {
		c := clientFrom(t, s, transports[2], 30, nil)
		for _, tt := range []struct {
			name, path, key, origin string
			status                  string
			message                 string
		}{
			{"no key", codenamev1connect.CodenameCreatorGetCodenameProcedure, "", corsOrigin, "16", "missing or wrong API key"},
			{"no key, other origin", codenamev1connect.CodenameCreatorGetCodenameProcedure, "", "https://elsewhere.example", "16", "missing or wrong API key"},
			{"non-canonical path", escapedGetCodename, testKey, corsOrigin, "3", "malformed request"},
		} {
			resp := postGRPCWebText(t, c, s.httpURL(tt.path), tt.key, tt.origin)
			if got := resp.Header.Get("Grpc-Status"); resp.StatusCode != http.StatusOK || got != tt.status || !strings.Contains(resp.Header.Get("Grpc-Message"), tt.message) {
				t.Errorf("%s: %s grpc-status %q grpc-message %q; want 200, %s and %q", tt.name, resp.Status, got, resp.Header.Get("Grpc-Message"), tt.status, tt.message)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/grpc-web-text" {
				t.Errorf("%s: content-type %q, want application/grpc-web-text", tt.name, ct)
			}
			want, exposes := "", ""
			if tt.origin == corsOrigin {
				want, exposes = corsOrigin, gatewayExposes
			}
			wantCORS(t, tt.name, resp.Header, want, exposes)
		}
	})

	t.Run("REST refusals unchanged", func(t *testing.T) {
		c := clientFrom(t, s, transports[1], 31, nil)
		get := func(path, key string) (*http.Response, string) {
			req, err := http.NewRequestWithContext(t.Context(), "GET", s.httpsURL(path), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", corsOrigin)
			if key != "" {
				req.Header.Set("x-api-key", key)
			}
			return doRead(t, c, req)
		}
		for _, tt := range []struct {
			name, path, key string
			status          int
			code            string
		}{
			{"no key", "/v1/codename?category=science", "", http.StatusUnauthorized, `"code":16`},
			{"non-canonical path", "/v1/%63odename", testKey, http.StatusBadRequest, `"code":3`},
		} {
			resp, body := get(tt.path, tt.key)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(body, tt.code) || !strings.Contains(body, `"details":[]`) {
				t.Errorf("%s: %s %q %s; want %d with the JSON error shape and %s", tt.name, resp.Status, resp.Header.Get("Content-Type"), body, tt.status, tt.code)
			}
			wantCORS(t, "REST "+tt.name, resp.Header, "", "")
		}
		var resp *http.Response
		var body string
		for range 2 * refusalLimit {
			if resp, body = get("/v1/codename?category=science", testKey); resp.StatusCode != http.StatusOK {
				break
			}
		}
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, `"code":8`) || resp.Header.Get("Retry-After") == "" {
			t.Errorf("REST over the rate limit: %s %s, want 429 with Retry-After and code 8", resp.Status, body)
		}
		wantCORS(t, "REST over the rate limit", resp.Header, "", "")
	})
}

// TestConnectRefusalsWithoutOrigins: with CODENAME_CORS_ORIGINS unset or
// empty (none allowed), a refusal carries no CORS headers for any origin.
func TestConnectRefusalsWithoutOrigins(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  []string
	}{{"unset", nil}, {"empty", []string{"CODENAME_CORS_ORIGINS="}}} {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, apiKey(testKey), withEnv(tt.env...))
			rec := &headerRecorder{}
			hc := clientFrom(t, s, transports[1], 1, rec)
			for _, p := range browserProtocols {
				client := codenamev1connect.NewCodenameCreatorClient(hc, s.httpsURL(""), p.opts...)
				_, err := client.GetCodename(t.Context(), originRequest(corsOrigin, ""))
				wantRefusal(t, p.name+" no key", err, connect.CodeUnauthenticated, "missing or wrong API key")
				wantCORS(t, p.name+" no key", rec.last(), "", "")
			}
		})
	}
}

// exposedByGateway is the Access-Control-Expose-Headers the gateway sends
// an allowed origin with an answer it makes itself; the test fails if it
// sends none.
func exposedByGateway(t *testing.T, s *system) string {
	t.Helper()
	rec := &headerRecorder{}
	hc := clientFrom(t, s, transports[1], 19, rec)
	client := codenamev1connect.NewCodenameCreatorClient(hc, s.httpsURL(""))
	if _, err := client.GetCodename(t.Context(), originRequest(corsOrigin, testKey)); err != nil {
		t.Fatalf("GetCodename with the key: %v", err)
	}
	h := rec.last()
	exposes := h.Get("Access-Control-Expose-Headers")
	if h.Get("Access-Control-Allow-Origin") != corsOrigin || exposes == "" {
		t.Fatalf("the gateway's answer to %s: Allow-Origin %q, Expose-Headers %q; want both", corsOrigin, h.Get("Access-Control-Allow-Origin"), exposes)
	}
	return exposes
}

// originRequest is a request for a science codename sent from a page of
// origin, with key as x-api-key unless it is empty.
func originRequest(origin, key string) *connect.Request[codenamev1.NameRequest] {
	req := connect.NewRequest(&codenamev1.NameRequest{Category: "science"})
	req.Header().Set("Origin", origin)
	if key != "" {
		req.Header().Set("x-api-key", key)
	}
	return req
}

// streamErr opens a server stream and returns the error it ends with; a
// stream that delivers a message fails the test.
func streamErr(t *testing.T, client *connect.Client[codenamev1.NameRequest, codenamev1.NameResult], req *connect.Request[codenamev1.NameRequest]) error {
	t.Helper()
	stream, err := client.CallServerStream(t.Context(), req)
	if err != nil {
		return err
	}
	defer stream.Close()
	if stream.Receive() {
		t.Fatalf("stream delivered %v, want a refusal", stream.Msg())
	}
	return stream.Err()
}

// wantRefusal fails the test unless err has code and a message holding
// message.
func wantRefusal(t *testing.T, what string, err error, code connect.Code, message string) {
	t.Helper()
	var cerr *connect.Error
	if !errors.As(err, &cerr) || cerr.Code() != code || !strings.Contains(cerr.Message(), message) {
		t.Errorf("%s: %v; want %v with a message holding %q", what, err, code, message)
	}
}

// wantCORS fails the test unless h allows origin (none if empty) and
// exposes exactly exposes, and says that it varies by Origin when it
// allows one.
func wantCORS(t *testing.T, what string, h http.Header, origin, exposes string) {
	t.Helper()
	if h == nil {
		t.Errorf("%s: no response", what)
		return
	}
	if got := h.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", what, got, origin)
	}
	if got := h.Get("Access-Control-Expose-Headers"); got != exposes {
		t.Errorf("%s: Access-Control-Expose-Headers %q, want %q", what, got, exposes)
	}
	if origin != "" && !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
		t.Errorf("%s: Vary %q, want Origin", what, h.Values("Vary"))
	}
}

// postGRPCWebText sends a gRPC-Web text call for a science codename to url
// from a page of origin, with key unless it is empty, and returns the
// answer with its body read.
func postGRPCWebText(t *testing.T, c *http.Client, url, key, origin string) *http.Response {
	t.Helper()
	// The body of an empty NameRequest: one uncompressed, empty message.
	req, err := http.NewRequestWithContext(t.Context(), "POST", url, strings.NewReader("AAAAAAA="))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc-web-text")
	req.Header.Set("Origin", origin)
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	resp, body := doRead(t, c, req)
	if body != "" {
		t.Errorf("%s: body %q, want none (Trailers-Only)", url, body)
	}
	return resp
}

// doRead sends req and returns the answer and its whole body.
func doRead(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

// clientFrom is tp's client calling from the loopback address 127.0.0.n,
// so that it has a rate limit of its own; rec, if not nil, records each
// answer's headers.
func clientFrom(t *testing.T, s *system, tp transport, n int, rec *headerRecorder) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	tp.configure(s, tr)
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}}
	tr.DialContext = d.DialContext
	t.Cleanup(tr.CloseIdleConnections)
	var rt http.RoundTripper = tr
	if rec != nil {
		rec.next = tr
		rt = rec
	}
	return &http.Client{Transport: rt, Timeout: 30 * time.Second}
}

// headerRecorder keeps the headers of the last answer that passed through
// it: connect-go's errors do not carry every header they came with.
type headerRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	h    http.Header
}

func (r *headerRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.h = nil
	r.mu.Unlock()
	resp, err := r.next.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.h = resp.Header.Clone()
		r.mu.Unlock()
	}
	return resp, err
}

// last is the last answer's headers, nil if the last request got none.
func (r *headerRecorder) last() http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.h
}
