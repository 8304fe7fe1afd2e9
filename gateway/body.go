package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// oversizedDrainBytes is how much more of a body over the limit is read and
// thrown away before the 413 goes out: as much as net/http's HTTP/1.1
// server reads of an unread body to keep a connection.
const oversizedDrainBytes = 256 << 10

// checkUnaryBody reads a unary request body whole and refuses it unless it
// is at most maxBodyBytes and holds at most one JSON value. The generated
// handlers decode the first value and ignore anything after it, which would
// let `{"category":"animals"} garbage` through.
func (g *gateway) checkUnaryBody(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if r.Body == nil || r.Body == http.NoBody || isStreamRoute(r) {
			next(w, r, params)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.maxBodyBytes))
		if err != nil {
			if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
				// Read on what remains, up to a bound, before answering:
				// Go's HTTP/2 server resets a stream whose body is left
				// unread, and HAProxy 2.6, still sending that body, then
				// sometimes drops the 413 and closes the client's
				// connection (seen in e2e TestHostileOversizedMessages).
				// net/http's HTTP/1.1 server drains the same way.
				_, _ = io.CopyN(io.Discard, r.Body, oversizedDrainBytes)
				g.httpError(w, r, http.StatusRequestEntityTooLarge,
					status.Errorf(codes.InvalidArgument, "request body is larger than %d bytes", g.maxBodyBytes))
				return
			}
			g.httpError(w, r, http.StatusBadRequest, status.Errorf(codes.InvalidArgument, "read request body: %v", err))
			return
		}
		if err := oneJSONValue(body); err != nil {
			g.httpError(w, r, http.StatusBadRequest, status.Error(codes.InvalidArgument, err.Error()))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next(w, r, params)
	}
}

// checkQuery refuses a query longer than maxBodyBytes, one that does not
// parse, one with a parameter the route does not read (see queryParams),
// or, except on the stream route, which reads its query itself, one whose
// names or values are not UTF-8. Query parameters fill the request
// message, which the server takes up to that size, and whose strings must
// be UTF-8: the gRPC client would fail to marshal it, and the caller get a
// 500.
func (g *gateway) checkQuery(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if int64(len(r.URL.RawQuery)) > g.maxBodyBytes {
			g.httpError(w, r, http.StatusRequestURITooLong,
				status.Errorf(codes.InvalidArgument, "query is longer than %d bytes", g.maxBodyBytes))
			return
		}
		if r.URL.RawQuery == "" {
			next(w, r, params) // nothing to refuse
			return
		}
		pattern := ""
		if pat, ok := runtime.HTTPPattern(r.Context()); ok {
			pattern = pat.String()
		}
		if queryFits(r.URL.RawQuery, g.queryParams[r.Method+" "+pattern], pattern != streamPattern) {
			next(w, r, params)
			return
		}
		// Something is wrong: found again the slow way, which says what.
		query, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			g.httpError(w, r, http.StatusBadRequest, status.Errorf(codes.InvalidArgument, "query is malformed: %v", err))
			return
		}
		if pattern != streamPattern {
			for name, values := range query {
				if !utf8.ValidString(name) || !allUTF8(values) {
					g.httpError(w, r, http.StatusBadRequest, status.Errorf(codes.InvalidArgument, "query parameter %q is not valid UTF-8", name))
					return
				}
			}
		}
		route := r.Method + " " + pattern
		known := g.queryParams[route]
		for _, name := range slices.Sorted(maps.Keys(query)) {
			if !slices.Contains(known, name) {
				takes := "no query parameters"
				if len(known) > 0 {
					takes = "only " + strings.Join(known, ", ")
				}
				g.httpError(w, r, http.StatusBadRequest, status.Errorf(codes.InvalidArgument, "unknown query parameter %q: %s takes %s", name, route, takes))
				return
			}
		}
		next(w, r, params)
	}
}

// queryFits reports whether the raw query parses as url.ParseQuery
// parses it, names only parameters in known, and, if utf8Only, holds
// nothing but UTF-8: what checkQuery lets through, decided without the
// map and the sorted names that ParseQuery and an error message need.
func queryFits(raw string, known []string, utf8Only bool) bool {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if strings.Contains(pair, ";") {
			return false // ParseQuery refuses semicolons
		}
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(name)
		if err != nil || !slices.Contains(known, name) {
			return false
		}
		value, err = url.QueryUnescape(value)
		if err != nil || (utf8Only && (!utf8.ValidString(name) || !utf8.ValidString(value))) {
			return false
		}
	}
	return true
}

// isStreamRoute reports whether r is on the stream's route: the cheap
// test first, since a Pattern names itself only by building a string.
func isStreamRoute(r *http.Request) bool {
	pat, ok := runtime.HTTPPattern(r.Context())
	return ok && pat.Verb() == "stream" && pat.String() == streamPattern
}

func allUTF8(values []string) bool {
	for _, v := range values {
		if !utf8.ValidString(v) {
			return false
		}
	}
	return true
}

// oneJSONValue reports an error unless body is empty or one JSON value
// surrounded by nothing but white space.
func oneJSONValue(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("request body is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("request body must hold exactly one JSON value")
	}
	return nil
}
