// Command applyoverlay completes the OpenAPI document that
// protoc-gen-openapiv3 makes from codename.proto with a checked-in OpenAPI
// Overlay (1.0) document, and prints the result as indented JSON: the
// document the gateway serves at /openapi.json.
//
// usage: go run ./api/internal/applyoverlay GENERATED.json OVERLAY.yaml
//
// scripts/generate.sh runs it after buf. An overlay action whose target
// matches nothing is an error, not a warning: it means the generator's
// output moved, and the served document would silently lose what the
// overlay says.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/pb33f/go-yaml"
	"github.com/pb33f/libopenapi"
	openapijson "github.com/pb33f/libopenapi/json"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "applyoverlay:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: applyoverlay GENERATED.json OVERLAY.yaml")
	}
	generated, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	overlay, err := os.ReadFile(args[1])
	if err != nil {
		return err
	}
	res, err := libopenapi.ApplyOverlayFromBytesToSpecBytes(generated, overlay)
	if err != nil {
		return fmt.Errorf("apply %s: %w", args[1], err)
	}
	if len(res.Warnings) > 0 {
		var msgs []error
		for _, w := range res.Warnings {
			msgs = append(msgs, errors.New(w.String()))
		}
		return fmt.Errorf("apply %s: %w", args[1], errors.Join(msgs...))
	}
	var root yaml.Node
	if err := yaml.Unmarshal(res.Bytes, &root); err != nil {
		return fmt.Errorf("read the result: %w", err)
	}
	out, err := openapijson.YAMLNodeToJSON(&root, "  ")
	if err != nil {
		return fmt.Errorf("render JSON: %w", err)
	}
	out = append(bytes.TrimRight(out, "\n"), '\n')
	_, err = os.Stdout.Write(out)
	return err
}
