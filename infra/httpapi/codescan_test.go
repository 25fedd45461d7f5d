package httpapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// codeSources are the packages whose errors reach the API.
var codeSources = []string{"../../domain/kernel", "../../domain/licensing", "../../domain/viewing", ".", "../dynamo", "../tokens", "../jobs", "../stepjobs"}

// scanCodes reads the production sources of codeSources and returns every
// stable code an error or problem is built with (kernel.Errorf's code,
// an Error or Problem literal's Code, an assignment to a problem's Code,
// the rule codes of a Denial), with where, and the places whose code is
// not a constant it can resolve.
func scanCodes(t *testing.T) (answers, rules map[string][]string, unresolved []string) {
	t.Helper()
	fset := token.NewFileSet()
	consts := map[string]string{} // name (bare and package-qualified) → value
	var files []*ast.File
	for _, dir := range codeSources {
		paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			if strings.HasSuffix(p, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, p, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, s := range g.Specs {
					vs := s.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
								v, _ := strconv.Unquote(lit.Value)
								consts[n.Name] = v
								consts[f.Name.Name+"."+n.Name] = v
							}
						}
					}
				}
			}
		}
	}
	answers, rules = map[string][]string{}, map[string][]string{}
	resolveInto := func(found map[string][]string, e ast.Expr) {
		at := fset.Position(e.Pos())
		where := filepath.Base(at.Filename) + ":" + strconv.Itoa(at.Line)
		var v string
		var ok bool
		switch x := e.(type) {
		case *ast.BasicLit:
			v, _ = strconv.Unquote(x.Value)
			ok = x.Kind == token.STRING
		case *ast.Ident:
			v, ok = consts[x.Name]
		case *ast.SelectorExpr:
			if p, isIdent := x.X.(*ast.Ident); isIdent {
				v, ok = consts[p.Name+"."+x.Sel.Name]
			}
		}
		if !ok {
			if !passThrough[types.ExprString(e)] {
				unresolved = append(unresolved, where+" "+types.ExprString(e))
			}
			return
		}
		if !isCode(v) {
			return // a message: viewing's invalid takes one first
		}
		found[v] = append(found[v], where)
	}
	resolve := func(e ast.Expr) { resolveInto(answers, e) }
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.CallExpr:
				name := ""
				switch fn := x.Fun.(type) {
				case *ast.Ident:
					name = fn.Name
				case *ast.SelectorExpr:
					name = fn.Sel.Name
				}
				switch {
				case name == "Errorf" && len(x.Args) >= 2:
					if _, isKind := x.Args[0].(*ast.SelectorExpr); isKind || strings.HasPrefix(exprName(x.Args[0]), "Kind") {
						resolve(x.Args[1])
					}
				case name == "invalid" && len(x.Args) >= 2:
					resolve(x.Args[1])
				case name == "Invalid" || name == "Unavailable":
					// The kernel's builders of its own codes.
					code := map[string]string{"Invalid": "kernel.CodeInvalidInput", "Unavailable": "kernel.CodeStoreUnavailable"}[name]
					resolve(&ast.SelectorExpr{X: &ast.Ident{NamePos: x.Pos(), Name: "kernel"}, Sel: &ast.Ident{NamePos: x.Pos(), Name: strings.TrimPrefix(code, "kernel.")}})
				}
			case *ast.CompositeLit:
				switch exprName(x.Type) {
				case "Error", "kernel.Error", "Problem", "RuleFailure", "licensing.RuleFailure":
					into := answers
					if strings.HasSuffix(exprName(x.Type), "RuleFailure") {
						into = rules
					}
					for _, el := range x.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok && exprName(kv.Key) == "Code" {
							resolveInto(into, kv.Value)
						}
					}
				}
			case *ast.AssignStmt:
				for i, l := range x.Lhs {
					if exprName(l) == "p.Code" && i < len(x.Rhs) {
						resolve(x.Rhs[i])
					}
				}
			}
			return true
		})
	}
	return answers, rules, unresolved
}

func isCode(s string) bool {
	return s != "" && strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == ""
}

func exprName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return exprName(x.X) + "." + x.Sel.Name
	}
	return ""
}

// passThrough are the places a code is passed on rather than named: the
// constructors themselves, the problem built from an error, and a viewing
// start refused by a title's availability (its rule codes, checked below).
var passThrough = map[string]bool{"code": true, "string(kind)": true, "e.Code": true, "f.Code": true}

// internalCodes name errors that never reach a client: the handler answers
// them as INTERNAL.
var internalCodes = map[string]bool{"WRONG_STREAM": true}

// TestCatalogueHoldsEveryCode: every code the sources answer or refuse
// with is in Codes with a status (rule codes without), and every entry of
// Codes is used somewhere.
func TestCatalogueHoldsEveryCode(t *testing.T) {
	answers, rules, unresolved := scanCodes(t)
	if len(answers) < 30 || len(rules) < 10 {
		t.Fatalf("the scan found %d answer codes and %d rule codes: it no longer reads the sources", len(answers), len(rules))
	}
	for _, u := range unresolved {
		t.Errorf("%s: a code the scan cannot resolve; name a constant or a literal", u)
	}
	inCatalogue := map[string]bool{}
	ruleCatalogue := map[string]bool{}
	for _, c := range Codes {
		if c.Meaning == "" {
			t.Errorf("%s has no meaning in the catalogue", c.Code)
		}
		if c.Status == 0 {
			ruleCatalogue[c.Code] = true
		} else {
			inCatalogue[c.Code] = true
		}
	}
	for code, where := range answers {
		if !inCatalogue[code] && !internalCodes[code] {
			t.Errorf("%s (%s) is not in the catalogue (httpapi.Codes)", code, strings.Join(where, ", "))
		}
	}
	for code, where := range rules {
		if !ruleCatalogue[code] {
			t.Errorf("rule code %s (%s) is not in the catalogue", code, strings.Join(where, ", "))
		}
	}
	// A viewing start passes a title's availability codes on (f.Code).
	for code, where := range rules {
		if slices.ContainsFunc(where, func(w string) bool { return strings.HasPrefix(w, "policy.go:") }) && !inCatalogue[code] {
			t.Errorf("availability code %s is answered by a viewing start but has no status in the catalogue", code)
		}
	}
	for code := range inCatalogue {
		if _, ok := answers[code]; !ok && code != "INTERNAL" {
			if _, isRule := rules[code]; !isRule {
				t.Errorf("%s is in the catalogue but no source answers with it", code)
			}
		}
	}
	for code := range ruleCatalogue {
		if _, ok := rules[code]; !ok {
			t.Errorf("rule code %s is in the catalogue but no rule refuses with it", code)
		}
	}
}

// TestDocsListEveryCode: docs/errors.md has a row for each code of the
// catalogue, with its status, and no row for a code outside it.
func TestDocsListEveryCode(t *testing.T) {
	doc, err := os.ReadFile("../../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // "code status" seen
	re := regexp.MustCompile("(?m)^\\| `([A-Z0-9_]+)` \\| ([0-9]{3}|rule) \\|")
	for _, m := range re.FindAllStringSubmatch(string(doc), -1) {
		rows[m[1]+" "+m[2]] = m[0]
	}
	want := map[string]bool{}
	for _, c := range Codes {
		key := c.Code + " rule"
		if c.Status != 0 {
			key = c.Code + " " + strconv.Itoa(c.Status)
		}
		want[key] = true
		if _, ok := rows[key]; !ok {
			t.Errorf("docs/errors.md has no row \"| `%s` | %s |\"", c.Code, strings.TrimPrefix(key, c.Code+" "))
		}
	}
	for key := range rows {
		if !want[key] {
			t.Errorf("docs/errors.md lists %q, which the catalogue does not hold", key)
		}
	}
}
