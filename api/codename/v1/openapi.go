package codenamev1

import _ "embed"

// OpenAPI is the OpenAPI (Swagger 2.0) document of the REST routes, as
// generated from the google.api.http annotations in codename.proto.
//
//go:embed codename.swagger.json
var OpenAPI []byte
