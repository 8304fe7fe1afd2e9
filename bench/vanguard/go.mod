// The benchmark's vanguard-go transcoder, a module of its own so that the
// project's go.mod does not depend on vanguard-go.
module github.com/codename-gateway/codename-gateway/bench/vanguard

go 1.26.0

require (
	connectrpc.com/vanguard v0.4.0
	github.com/codename-gateway/codename-gateway v0.0.0
)

require (
	connectrpc.com/connect v1.21.1 // indirect
	github.com/grpc-ecosystem/grpc-gateway/v2 v2.33.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20261104224025-d1e00e9f33ab // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261019180522-ce908d29299b // indirect
	google.golang.org/grpc v1.85.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/codename-gateway/codename-gateway => ../..
