package codenamev1

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of the gateway's REST routes:
// protoc-gen-openapiv3's document from codename.proto, completed by
// api/openapi/overlay.yaml with what the proto cannot say.
//
//go:embed codename.openapi.json
var OpenAPI []byte
