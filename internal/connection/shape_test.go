package connection_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/outreach-connector/outreach-connector/"

// The domain imports nothing of ours, and destinations import only the
// domain: never the sync engine, the client or each other.
func TestShape(t *testing.T) {
	for dir, allowed := range map[string][]string{
		".":          nil,
		"../sqldest": {"internal/connection"},
		"../jsonl":   {"internal/connection"},
		"../singer":  {"internal/connection"},
	} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range ast.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				own, ok := strings.CutPrefix(path, module)
				if ok && !slices.Contains(allowed, own) {
					t.Errorf("%s imports %s; allowed of ours: %v", f, path, allowed)
				}
			}
		}
	}
}
