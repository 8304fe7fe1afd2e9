// Package web holds the browser demo page. Its files are embedded in the
// binary, so the gateway serves them with no build step and no files on disk.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Files is the page's file tree: index.html at its root, the assets beside it.
var Files = func() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the folder exists
	}
	return sub
}()
