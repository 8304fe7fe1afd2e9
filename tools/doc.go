// Package tools holds, one module per folder, the Go tools the scripts use,
// each pinned with every dependency in its go.mod and go.sum: buf (run with
// `go tool -modfile=tools/buf/go.mod`), and grpcurl, h2spec and grpc-go's
// interop client and server, which scripts/setup.sh builds into bin/. The
// package itself has only a test, which checks that what setup built is
// what those files pin.
package tools
