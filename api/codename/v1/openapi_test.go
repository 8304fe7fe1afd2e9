package codenamev1_test

import (
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// TestOpenAPIDocumentIsValid checks the document the gateway serves
// against the OpenAPI 3.1 specification's own schema, with
// libopenapi-validator; e2e/openapi_test.go checks it against the running
// system.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, err := libopenapi.NewDocument(codenamev1.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := doc.GetVersion(), "3.1.0"; got != want {
		t.Errorf("openapi = %q, want %q", got, want)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("build a validator: %v", errs)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("%s: %s", e.Message, e.Reason)
		}
	}
}
