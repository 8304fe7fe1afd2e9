#!/usr/bin/env bash
# Regenerates the code under api/ from api/codename/v1/codename.proto.
#
# usage: scripts/generate.sh [output-dir]   (default: the repository itself)
#
# The google/api protos come from the grpc-gateway v1 Go module, pinned here
# by version and checksum and fetched through the Go module proxy, because
# buf's registry cannot be reached from every machine that builds this.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.}

googleapis_module=github.com/grpc-ecosystem/grpc-gateway@v1.16.0
googleapis_sum=h1:gmcG1KaJ57LophUzW0Hy8NmPhnMZb4M0+kPpLofRdBo=

info=$(go mod download -json "$googleapis_module")
dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$info")
sum=$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p' <<<"$info")
if [[ "$sum" != "$googleapis_sum" ]]; then
  echo "generate: $googleapis_module has checksum $sum, want $googleapis_sum" >&2
  exit 1
fi
mkdir -p third_party/googleapis/google/api
for f in annotations.proto http.proto; do
  install -m 0644 "$dir/third_party/googleapis/google/api/$f" third_party/googleapis/google/api/
done

# The OpenAPI options protos ship with grpc-gateway v2, the version go.mod
# pins (and go.sum checksums) for the runtime the generated code uses.
openapi_dir=$(go list -m -f '{{.Dir}}' github.com/grpc-ecosystem/grpc-gateway/v2)
mkdir -p third_party/googleapis/protoc-gen-openapiv3/options
for f in annotations.proto openapiv3.proto; do
  install -m 0644 "$openapi_dir/protoc-gen-openapiv3/options/$f" third_party/googleapis/protoc-gen-openapiv3/options/
done

# protoc-gen-es, for the JavaScript clients, is pinned by npm's lock file.
if [[ ! -x web/clients/node_modules/.bin/protoc-gen-es ]]; then
  echo "generate: web/clients/node_modules/.bin/protoc-gen-es is missing: run scripts/setup.sh test (npm ci in web/clients)" >&2
  exit 1
fi
trap 'rm -rf "$out/.openapiv3"' EXIT
go tool -modfile=tools/buf/go.mod buf generate --output "$out"
# The served document: the generator's, completed by the overlay with what
# a proto cannot say (see api/openapi/overlay.yaml). Written aside first, so
# that a failed step leaves the committed document as it was.
go run ./api/internal/applyoverlay \
  "$out/.openapiv3/codename/v1/codename.openapi.json" api/openapi/overlay.yaml \
  >"$out/.openapiv3/served.json"
mv "$out/.openapiv3/served.json" "$out/api/codename/v1/codename.openapi.json"

# A client generated from the served document by a well-known generator,
# pinned in its own tools module so that its dependencies stay out of the
# project's; e2e/openapi_test.go calls the running system with it.
mkdir -p "$out/api/openapi/openapiclient"
go tool -modfile=tools/oapi-codegen/go.mod oapi-codegen -config api/openapi/oapi-codegen.yaml \
  -o "$out/api/openapi/openapiclient/client.gen.go" "$out/api/codename/v1/codename.openapi.json"
