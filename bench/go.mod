// The benchmark (go run . -out results, from this folder), a module of its
// own so that what only the benchmark uses (vanguard-go, procfs) stays out
// of the product's go.mod. It measures this repository's code: the replace
// below builds against the working tree, not a published version.
module github.com/codename-gateway/codename-gateway/bench

go 1.26.0

replace github.com/codename-gateway/codename-gateway => ../

require (
	connectrpc.com/vanguard v0.4.0
	github.com/codename-gateway/codename-gateway v0.0.0
	github.com/coder/websocket v1.8.15
	github.com/prometheus/procfs v0.22.0
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
)

require (
	connectrpc.com/connect v1.21.1 // indirect
	github.com/grpc-ecosystem/grpc-gateway/v2 v2.33.0 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20261104224025-d1e00e9f33ab // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261019180522-ce908d29299b // indirect
)
