package main

import "github.com/codename-gateway/codename-gateway/gateway"

// parseOrigins reads the comma-separated list of origins whose pages may
// call the gRPC paths from a browser; the co-located gateway in
// codename-server reads the same setting the same way.
func parseOrigins(list string) ([]string, error) { return gateway.ParseOrigins(list) }
