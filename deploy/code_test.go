package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/codename-gateway/codename-gateway/internal/devtls"
)

// repoRoot is the repository, seen from this package's folder, and
// modulePath its module's import path.
const (
	repoRoot   = ".."
	modulePath = "github.com/codename-gateway/codename-gateway"
)

var (
	// variable is a name the code reads from the environment.
	variable = regexp.MustCompile(`CODENAME_[A-Z0-9_]+`)
	// flagVariable is an envflag definition: the flag, then its variable.
	flagVariable = regexp.MustCompile(`\.(?:String|Duration|Int|Int64)\(\s*"([a-z0-9-]+)",\s*"(CODENAME_[A-Z0-9_]+)"`)
)

// codeFacts is what the code reads, gathered from its source.
type codeFacts struct {
	// vars are the CODENAME_ variables anywhere in the binaries'
	// packages, internal/ and haproxy.cfg; read has them per process.
	vars map[string]bool
	read map[string]map[string]bool
	// flags maps each binary's flags to their variables.
	flags map[string]map[string]string
}

func readCode(t *testing.T) codeFacts {
	t.Helper()
	c := codeFacts{vars: map[string]bool{}, read: map[string]map[string]bool{}, flags: map[string]map[string]string{}}
	add := func(kind, file string) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if c.read[kind] == nil {
			c.read[kind] = map[string]bool{}
		}
		for _, v := range variable.FindAllString(string(b), -1) {
			c.vars[v] = true
			if kind != "" {
				c.read[kind][v] = true
			}
		}
		if kind == serverKind || kind == gatewayKind {
			if c.flags[kind] == nil {
				c.flags[kind] = map[string]string{}
			}
			for _, m := range flagVariable.FindAllStringSubmatch(string(b), -1) {
				c.flags[kind][m[1]] = m[2]
			}
		}
	}
	// imports holds the internal packages each binary imports, whose
	// flags (such as internal/tuning's -cpu-share) are the binary's own.
	imports := map[string]map[string]bool{}
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		rel, err := filepath.Rel(repoRoot, p)
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		switch {
		case parts[0] == "cmd" && len(parts) == 3 && (parts[1] == serverKind || parts[1] == gatewayKind):
			add(parts[1], p)
			file, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			for _, imp := range file.Imports {
				if dir, ok := strings.CutPrefix(strings.Trim(imp.Path.Value, `"`), modulePath+"/internal/"); ok {
					if imports[parts[1]] == nil {
						imports[parts[1]] = map[string]bool{}
					}
					imports[parts[1]][dir] = true
				}
			}
		case parts[0] == "cmd" && len(parts) == 3, parts[0] == "internal":
			add("", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for kind, dirs := range imports {
		for dir := range dirs {
			files, err := filepath.Glob(filepath.Join(repoRoot, "internal", dir, "*.go"))
			if err != nil {
				t.Fatal(err)
			}
			for _, file := range files {
				if strings.HasSuffix(file, "_test.go") {
					continue
				}
				b, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range flagVariable.FindAllStringSubmatch(string(b), -1) {
					c.flags[kind][m[1]] = m[2]
					c.read[kind][m[2]] = true
				}
			}
		}
	}
	add(haproxyKind, filepath.Join(repoRoot, "haproxy", "haproxy.cfg"))
	for _, kind := range []string{serverKind, gatewayKind, haproxyKind} {
		if len(c.read[kind]) == 0 {
			t.Fatalf("found no CODENAME_ variable that %s reads: the search of the source is broken", kind)
		}
	}
	for _, kind := range []string{serverKind, gatewayKind} {
		for _, flag := range []string{"addr", "admin-addr"} {
			c.envOf(t, kind, flag)
		}
	}
	c.envOf(t, gatewayKind, "grpc-addr")
	return c
}

// envOf is the variable behind a binary's flag.
func (c codeFacts) envOf(t *testing.T, kind, flag string) string {
	t.Helper()
	v, ok := c.flags[kind][flag]
	if !ok {
		t.Fatalf("cmd/%s defines no flag -%s with a variable (found %v)", kind, flag, c.flags[kind])
	}
	return v
}

// harnessTLS is what the test harness writes into its certificate folder.
type harnessTLS struct {
	files map[string]bool // every file's name
	caKey string          // the CA's private key, among files
	names map[string]bool // the names server certificates are issued for
}

// harnessCerts finds the calls with which internal/stack issues
// certificates, and the names it passes them, in its source, then makes
// the same calls into a temporary folder and lists it.
func harnessCerts(t *testing.T) harnessTLS {
	t.Helper()
	dir := filepath.Join(repoRoot, "internal", "stack")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	consts := map[string]string{}
	var calls []*ast.CallExpr
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if i < len(n.Values) {
						if lit, ok := n.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							consts[name.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
					if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "devtls" {
						calls = append(calls, n)
					}
				}
			}
			return true
		})
	}
	name := func(call *ast.CallExpr) string {
		if len(call.Args) < 2 {
			t.Fatalf("%s: want devtls.%s(dir, name, ...)", fset.Position(call.Pos()), call.Fun.(*ast.SelectorExpr).Sel.Name)
		}
		switch a := call.Args[1].(type) {
		case *ast.BasicLit:
			if s, err := strconv.Unquote(a.Value); err == nil {
				return s
			}
		case *ast.Ident:
			if s, ok := consts[a.Name]; ok {
				return s
			}
		}
		t.Fatalf("%s: cannot tell which name the harness issues a certificate for", fset.Position(call.Pos()))
		return ""
	}
	out := t.TempDir()
	h := harnessTLS{files: map[string]bool{}, names: map[string]bool{}}
	ensured, issued := false, 0
	for _, call := range calls {
		switch fn := call.Fun.(*ast.SelectorExpr).Sel.Name; fn {
		case "Ensure":
			f, err := devtls.Ensure(out)
			if err != nil {
				t.Fatal(err)
			}
			ensured, h.caKey = true, filepath.Base(f.CAKey)
		case "IssueServer":
			n := name(call)
			if _, err := devtls.IssueServer(out, n, devtls.Hosts); err != nil {
				t.Fatal(err)
			}
			h.names[n] = true
			issued++
		case "IssueClient":
			if _, err := devtls.IssueClient(out, name(call)); err != nil {
				t.Fatal(err)
			}
			issued++
		}
	}
	if !ensured || issued == 0 {
		t.Fatalf("found %d devtls calls in internal/stack, without Ensure or without Issue*: the search of the source is broken", len(calls))
	}
	written, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range written {
		h.files[e.Name()] = true
	}
	return h
}
