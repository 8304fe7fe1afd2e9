// Package tools holds, one module per folder, the Go tools the scripts use,
// each pinned with every dependency in its go.mod and go.sum: those the
// scripts run with `go tool -modfile=tools/DIR/go.mod` (buf, oapi-codegen),
// and those scripts/setup.sh builds into bin/ (grpcurl, h2spec, grpc-go's
// interop client and server). The package itself has only a test, which
// checks that what setup built is what those files pin.
package tools
