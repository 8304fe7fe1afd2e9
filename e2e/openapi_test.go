package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/api/openapi/openapiclient"
)

// openAPI is the document a system serves, and what checks traffic
// against it.
type openAPI struct {
	validator validator.Validator
	// lax checks the document route's answer: strict mode would refuse
	// every field of a body declared as any object, and the document is
	// checked against the OpenAPI schema itself.
	lax        validator.Validator
	streamLine *base.Schema // one line or message of a codename stream
}

// servedOpenAPI fetches /openapi.json through HAProxy and builds a
// validator from it, failing the test unless the document is a valid
// OpenAPI 3.1 document (checked against the specification's own schema).
func servedOpenAPI(t *testing.T, c *http.Client, url string) *openAPI {
	t.Helper()
	resp, body := do(t, c, http.MethodGet, url, "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json: %s", resp.Status)
	}
	doc, err := libopenapi.NewDocument(body)
	if err != nil {
		t.Fatalf("parse /openapi.json: %v", err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Fatalf("openapi = %q, want 3.1.0", v)
	}
	// Strict: a field, query parameter or header the document does not
	// declare is an error too.
	v, errs := validator.NewValidator(doc, config.WithStrictMode())
	if len(errs) > 0 {
		t.Fatalf("build a validator from /openapi.json: %v", errs)
	}
	lax, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("build a validator from /openapi.json: %v", errs)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("/openapi.json: %s: %s", e.Message, e.Reason)
		}
		t.FailNow()
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	proxy := model.Model.Components.Schemas.GetOrZero("codename.v1.StreamLine")
	if proxy == nil {
		t.Fatal("/openapi.json has no codename.v1.StreamLine schema")
	}
	return &openAPI{validator: v, lax: lax, streamLine: proxy.Schema()}
}

// checkResponse fails the test unless resp (whose body is body) is one the
// document allows for req.
func (o *openAPI) checkResponse(t *testing.T, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	cp := *resp
	cp.Body = io.NopCloser(bytes.NewReader(body))
	v := o.validator
	if req.URL.Path == "/openapi.json" {
		v = o.lax
	}
	if ok, errs := v.ValidateHttpResponse(req, &cp); !ok {
		for _, e := range errs {
			t.Errorf("%s %s: %d %q %s: not as /openapi.json says: %s: %s", req.Method, req.URL.Path, resp.StatusCode, resp.Header.Get("Content-Type"), body, e.Message, e.Reason)
		}
	}
}

// checkStreamLine fails the test unless data is a stream line as the
// document describes it.
func (o *openAPI) checkStreamLine(t *testing.T, data []byte) {
	t.Helper()
	if ok, errs := schema_validation.NewSchemaValidator(config.WithStrictMode()).ValidateSchemaBytesWithVersion(o.streamLine, data, 3.1); !ok {
		for _, e := range errs {
			t.Errorf("stream line %s is not a codename.v1.StreamLine: %s: %s", data, e.Message, e.Reason)
		}
	}
}

// checkingDoer sends the generated client's requests and checks each
// request, and each response whose body is one JSON value, against the
// document; streams are checked line by line by the tests that read them.
type checkingDoer struct {
	t   *testing.T
	c   *http.Client
	doc *openAPI
}

func (d checkingDoer) Do(req *http.Request) (*http.Response, error) {
	d.t.Helper()
	// A body that cannot be read twice is a stream still being written.
	if req.Body == nil || req.GetBody != nil {
		if req.GetBody != nil {
			cp := req.Clone(req.Context())
			cp.Body, _ = req.GetBody()
			req = cp
		}
		if ok, errs := d.doc.validator.ValidateHttpRequest(req); !ok {
			for _, e := range errs {
				d.t.Errorf("%s %s: request not as /openapi.json says: %s: %s", req.Method, req.URL.Path, e.Message, e.Reason)
			}
		}
		if req.GetBody != nil {
			req.Body, _ = req.GetBody()
		}
	}
	resp, err := d.c.Do(req)
	if err != nil || resp.Header.Get("Content-Type") != "application/json" {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	d.doc.checkResponse(d.t, req, resp, body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// generatedClient is the client oapi-codegen generated from the document,
// pointed at HAProxy's TLS listener over HTTP/2.
func generatedClient(t *testing.T, s *system, doc *openAPI, editors ...openapiclient.RequestEditorFn) *openapiclient.ClientWithResponses {
	t.Helper()
	opts := []openapiclient.ClientOption{openapiclient.WithHTTPClient(checkingDoer{t, transports[1].client(t, s), doc})}
	for _, e := range editors {
		opts = append(opts, openapiclient.WithRequestEditorFn(e))
	}
	c, err := openapiclient.NewClientWithResponses(s.httpsURL(""), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOpenAPIDocument checks that the served document is the committed
// one, describes every route the gateway answers by a named operation, and
// carries no generator leftovers.
func TestOpenAPIDocument(t *testing.T) {
	s := shared(t)
	c := transports[1].client(t, s)
	servedOpenAPI(t, c, s.httpsURL("/openapi.json"))
	_, body := do(t, c, http.MethodGet, s.httpsURL("/openapi.json"), "", "")
	if !bytes.Equal(body, codenamev1.OpenAPI) {
		t.Error("/openapi.json is not api/codename/v1/codename.openapi.json")
	}
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
		Components struct {
			SecuritySchemes map[string]struct {
				Type, In, Name string
			} `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	var got []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			got = append(got, method+" "+path+" "+op.OperationID)
		}
	}
	slices.Sort(got)
	want := []string{
		"get /healthz checkHealth",
		"get /openapi.json getOpenAPIDocument",
		"get /v1/categories listCategories",
		"get /v1/codename getCodename",
		"get /v1/codenames:stream streamCodenamesForBrowsers",
		"post /v1/codename postCodename",
		"post /v1/codenames:stream streamCodenames",
	}
	if !slices.Equal(got, want) {
		t.Errorf("operations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	key := doc.Components.SecuritySchemes["apiKey"]
	if key.Type != "apiKey" || key.In != "header" || key.Name != "x-api-key" {
		t.Errorf("security scheme apiKey = %+v, want an apiKey in the x-api-key header", key)
	}
	for _, leftover := range []string{"CodenameCreator_", "(streaming responses)", "An unexpected error response", "swagger"} {
		if bytes.Contains(body, []byte(leftover)) {
			t.Errorf("/openapi.json contains the generator leftover %q", leftover)
		}
	}
}

// TestOpenAPIClient calls the running system through HAProxy with the
// client oapi-codegen generated from /openapi.json, and checks every
// request and response (each line of a stream) against the document.
func TestOpenAPIClient(t *testing.T) {
	s := shared(t)
	doc := servedOpenAPI(t, transports[1].client(t, s), s.httpsURL("/openapi.json"))
	client := generatedClient(t, s, doc)
	ctx := t.Context()

	t.Run("GET /v1/codename", func(t *testing.T) {
		category := "science"
		resp, err := client.GetCodenameWithResponse(ctx, &openapiclient.GetCodenameParams{Category: &category})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != http.StatusOK || resp.JSON200 == nil || categoryOf(resp.JSON200.Name) != "science" {
			t.Fatalf("got %s %s, want 200 with a science codename", resp.Status(), resp.Body)
		}
	})
	t.Run("POST /v1/codename", func(t *testing.T) {
		category := "Space"
		resp, err := client.PostCodenameWithResponse(ctx, openapiclient.CodenameV1NameRequest{Category: &category})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != http.StatusOK || resp.JSON200 == nil || categoryOf(resp.JSON200.Name) != "space" {
			t.Fatalf("got %s %s, want 200 with a space codename", resp.Status(), resp.Body)
		}
	})
	t.Run("unknown category", func(t *testing.T) {
		category := "plants"
		resp, err := client.GetCodenameWithResponse(ctx, &openapiclient.GetCodenameParams{Category: &category})
		if err != nil {
			t.Fatal(err)
		}
		want := openapiclient.GoogleRpcStatus{Code: 3, Message: `unknown category "plants": valid categories are animals, science, space`, Details: []openapiclient.GoogleRpcStatus_Details_Item{}}
		if resp.StatusCode() != http.StatusBadRequest || resp.JSONDefault == nil || resp.JSONDefault.Code != want.Code || resp.JSONDefault.Message != want.Message || len(resp.JSONDefault.Details) != 0 {
			t.Fatalf("got %s %s, want 400 with %+v", resp.Status(), resp.Body, want)
		}
	})
	t.Run("GET /v1/categories", func(t *testing.T) {
		resp, err := client.ListCategoriesWithResponse(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := openapiclient.CodenameV1ListCategoriesResponse{Categories: []string{"animals", "science", "space"}, DefaultCategory: "animals"}
		if resp.StatusCode() != http.StatusOK || resp.JSON200 == nil || !slices.Equal(resp.JSON200.Categories, want.Categories) || resp.JSON200.DefaultCategory != want.DefaultCategory {
			t.Fatalf("got %s %s, want 200 with %+v", resp.Status(), resp.Body, want)
		}
	})
	t.Run("GET /healthz", func(t *testing.T) {
		resp, err := client.CheckHealthWithResponse(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != http.StatusOK || resp.JSON200 == nil || resp.JSON200.Status != openapiclient.SERVING {
			t.Fatalf("got %s %s, want 200 SERVING", resp.Status(), resp.Body)
		}
		service := "codename.v1.Nope"
		resp, err = client.CheckHealthWithResponse(ctx, &openapiclient.CheckHealthParams{Service: &service})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != http.StatusNotFound || resp.JSONDefault == nil || resp.JSONDefault.Code != 5 {
			t.Fatalf("got %s %s, want 404 with code 5", resp.Status(), resp.Body)
		}
	})
	t.Run("GET /openapi.json", func(t *testing.T) {
		resp, err := client.GetOpenAPIDocumentWithResponse(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != http.StatusOK || resp.JSON200 == nil || (*resp.JSON200)["openapi"] != "3.1.0" {
			t.Fatalf("got %s, want 200 with the document", resp.Status())
		}
	})
	t.Run("POST /v1/codenames:stream", func(t *testing.T) {
		testOpenAPINDJSONStream(t, client, doc)
	})
	t.Run("GET /v1/codenames:stream as Server-Sent Events", func(t *testing.T) {
		testOpenAPISSE(t, client, doc)
	})
	t.Run("GET /v1/codenames:stream as a WebSocket", func(t *testing.T) {
		testOpenAPIWebSocket(t, s, doc)
	})
	t.Run("GET /v1/codenames:stream otherwise", func(t *testing.T) {
		resp, err := client.StreamCodenamesForBrowsersWithResponse(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		const want = "needs a WebSocket upgrade or Accept: text/event-stream"
		if resp.StatusCode() != http.StatusNotAcceptable || resp.JSON406 == nil || !strings.Contains(resp.JSON406.Message, want) {
			t.Fatalf("got %s %s, want 406 with a message that says it %s", resp.Status(), resp.Body, want)
		}
	})
}

// testOpenAPINDJSONStream streams with the generated call: request lines
// go in while response lines come out, each checked against the document.
func testOpenAPINDJSONStream(t *testing.T, client *openapiclient.ClientWithResponses, doc *openAPI) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	defer pw.Close()
	var sent *http.Request
	capture := func(_ context.Context, req *http.Request) error { sent = req; return nil }
	write := func(line string) {
		t.Helper()
		if _, err := io.WriteString(pw, line+"\n"); err != nil {
			t.Fatalf("write %s: %v", line, err)
		}
	}
	// The response starts with the first codename, so the first request
	// goes in while the call is being made.
	go func() {
		if _, err := io.WriteString(pw, `{"category":"animals"}`+"\n"); err != nil {
			t.Errorf("write the first request: %v", err)
		}
	}()
	resp, err := client.StreamCodenamesWithBody(ctx, "application/x-ndjson", pr, capture)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/x-ndjson" {
		t.Fatalf("got %s %q, want 200 application/x-ndjson", resp.Status, ct)
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() openapiclient.CodenameV1StreamLine {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("stream ended: %v", lines.Err())
		}
		doc.checkResponse(t, sent, resp, lines.Bytes())
		var l openapiclient.CodenameV1StreamLine
		if err := json.Unmarshal(lines.Bytes(), &l); err != nil {
			t.Fatalf("line %s: %v", lines.Bytes(), err)
		}
		return l
	}
	if l := next(); l.Result == nil || categoryOf(l.Result.Name) != "animals" {
		t.Fatalf("first line %+v, want an animals codename", l)
	}
	write(`{"category":"plants"}`)
	for range 5 { // the category switches from the next codename on
		l := next()
		if l.Error != nil {
			if l.Error.Code != 3 || !strings.Contains(l.Error.Message, `unknown category "plants"`) {
				t.Fatalf("error line %+v, want code 3 naming plants", *l.Error)
			}
			if lines.Scan() {
				t.Fatalf("a line after the error: %s", lines.Bytes())
			}
			return
		}
	}
	t.Fatal("no error line within 5 lines of an unknown category")
}

// testOpenAPISSE reads Server-Sent Events through the generated call.
func testOpenAPISSE(t *testing.T, client *openapiclient.ClientWithResponses, doc *openAPI) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var sent *http.Request
	accept := func(_ context.Context, req *http.Request) error {
		req.Header.Set("Accept", "text/event-stream")
		sent = req
		return nil
	}
	category := "science"
	resp, err := client.StreamCodenamesForBrowsers(ctx, &openapiclient.StreamCodenamesForBrowsersParams{Category: &category}, accept)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	var head bytes.Buffer
	events := 0
	for events < 2 {
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("after %q: %v", head.Bytes(), err)
		}
		head.Write(line)
		if data, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			doc.checkStreamLine(t, data)
			var l openapiclient.CodenameV1StreamLine
			if err := json.Unmarshal(data, &l); err != nil || l.Result == nil || categoryOf(l.Result.Name) != "science" {
				t.Fatalf("event data %s, want a science codename", data)
			}
			events++
		}
	}
	if !bytes.HasPrefix(head.Bytes(), []byte("retry: 1000\n\n")) {
		t.Errorf("stream starts %q, want the retry line the document names", head.Bytes())
	}
	doc.checkResponse(t, sent, resp, head.Bytes())
}

// testOpenAPIWebSocket checks the upgrade and the messages of a WebSocket
// against the document; the generated client has no WebSocket support, so
// the socket is coder/websocket's.
func testOpenAPIWebSocket(t *testing.T, s *system, doc *openAPI) {
	conn, resp, err := dialWS(t, s, true, "")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	req, err := http.NewRequest(http.MethodGet, wsURL(s, true), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Scheme = "https"
	req.Header.Set("Upgrade", "websocket")
	doc.checkResponse(t, req, resp, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"category":"space"}`)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		doc.checkStreamLine(t, data)
		var l openapiclient.CodenameV1StreamLine
		if err := json.Unmarshal(data, &l); err != nil || l.Result == nil {
			t.Fatalf("message %s, want a codename", data)
		}
	}
	conn.Close(websocket.StatusNormalClosure, "")
}

// TestOpenAPIClientAPIKey checks the document's x-api-key scheme against a
// system that requires a key: the generated client gets the documented 401
// without it and its answer with it, and /healthz needs none.
func TestOpenAPIClientAPIKey(t *testing.T) {
	const key = "openapi-test-key"
	s := start(t, apiKey(key))
	withKey := func(_ context.Context, req *http.Request) error { req.Header.Set("x-api-key", key); return nil }
	c := transports[1].client(t, s)
	resp, body := do(t, c, http.MethodGet, s.httpsURL("/openapi.json"), "", "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /openapi.json without the key: %s %s, want 401", resp.Status, body)
	}
	doc := servedOpenAPI(t, &http.Client{Transport: keyTransport{c.Transport, key}}, s.httpsURL("/openapi.json"))

	without := generatedClient(t, s, doc)
	got, err := without.ListCategoriesWithResponse(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got.StatusCode() != http.StatusUnauthorized || got.JSONDefault == nil || got.JSONDefault.Code != 16 {
		t.Errorf("without the key: %s %s, want 401 with code 16", got.Status(), got.Body)
	}
	health, err := without.CheckHealthWithResponse(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if health.StatusCode() != http.StatusOK {
		t.Errorf("/healthz without the key: %s %s, want 200", health.Status(), health.Body)
	}
	with := generatedClient(t, s, doc, withKey)
	if got, err = with.ListCategoriesWithResponse(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got.StatusCode() != http.StatusOK || got.JSON200 == nil || got.JSON200.DefaultCategory != "animals" {
		t.Errorf("with the key: %s %s, want 200 with the categories", got.Status(), got.Body)
	}
}

// keyTransport adds the API key to every request.
type keyTransport struct {
	http.RoundTripper
	key string
}

func (k keyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("x-api-key", k.key)
	return k.RoundTripper.RoundTrip(req)
}
