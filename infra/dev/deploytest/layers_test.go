package deploytest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/dlicense/dlicense/"

// floors are the layers of the house, lowest first: a package may import
// only from a floor below its own, or from its own room (the operator
// tools and the development tooling use their neighbours). The longest
// prefix names a package's floor.
var floors = []struct {
	prefix string
	floor  int
	room   bool // its packages may import each other
}{
	{"domain/kernel", 0, false},
	{"domain/audit", 0, false},
	{"infra/invoke", 3, false},
	{"domain/licensing", 1, false},
	{"domain/viewing", 2, false},
	{"infra/tokens", 3, false},
	{"infra/dynamo", 3, false},
	{"infra/memstore", 3, false},
	{"infra/storetest", 4, false},
	{"infra/dynamo/dynamotest", 4, false},
	{"infra/projector", 4, false},
	{"infra/jobs", 3, false},
	{"infra/stepjobs", 4, false},
	{"infra/httpapi", 4, false},
	{"infra/projector/projectortest", 5, false},
	{"infra/setup", 5, false},
	{"infra/changestream", 5, false},
	{"infra/ops", 6, true},
	{"functions", 7, false},
	{"infra/dev", 8, true},
}

// floorOf is the floor of a package of the module and the prefix that
// places it ("" if none does).
func floorOf(pkg string) (int, string, bool) {
	best, floor, room := "", -1, false
	for _, f := range floors {
		p := module + f.prefix
		if (pkg == p || strings.HasPrefix(pkg, p+"/")) && len(f.prefix) > len(best) {
			best, floor, room = f.prefix, f.floor, f.room
		}
	}
	return floor, best, room
}

type listed struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// packages lists every package of the module with its imports.
func packages(t *testing.T) []listed {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "../../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listed
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	return pkgs
}

// TestImportsRunDownTheLayers: no package imports one on a floor above
// its own (nor beside it, but in the rooms of neighbours), and every
// package has a floor.
func TestImportsRunDownTheLayers(t *testing.T) {
	for _, p := range packages(t) {
		floor, prefix, room := floorOf(p.ImportPath)
		if prefix == "" {
			t.Errorf("%s has no floor: place it in floors", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			to, toPrefix, _ := floorOf(imp)
			if to < floor || room && toPrefix == prefix {
				continue
			}
			t.Errorf("%s (floor %d) imports %s (floor %d): imports run down the layers", strings.TrimPrefix(p.ImportPath, module), floor, strings.TrimPrefix(imp, module), to)
		}
	}
}

// TestProductionCodeAndItsTestsImportNoDevTooling: outside infra/dev, no
// package and no test of one imports development tooling; the doubles and
// contract suites the tests need live beside the adapters.
func TestProductionCodeAndItsTestsImportNoDevTooling(t *testing.T) {
	dev := module + "infra/dev"
	for _, p := range packages(t) {
		if p.ImportPath == dev || strings.HasPrefix(p.ImportPath, dev+"/") {
			continue
		}
		for _, imps := range [][]string{p.Imports, p.TestImports, p.XTestImports} {
			for _, imp := range imps {
				if imp == dev || strings.HasPrefix(imp, dev+"/") {
					t.Errorf("%s imports %s", strings.TrimPrefix(p.ImportPath, module), strings.TrimPrefix(imp, module))
				}
			}
		}
	}
}

// TestTheLayerCheckPlacesPackages: the floors order what they should.
func TestTheLayerCheckPlacesPackages(t *testing.T) {
	for _, c := range []struct {
		pkg   string
		floor int
	}{
		{"domain/kernel", 0}, {"infra/dynamo", 3}, {"infra/dynamo/dynamotest", 4},
		{"infra/projector/projectortest", 5}, {"infra/ops/cmd/dlicense-rebuild", 6}, {"infra/dev/local", 8},
	} {
		if got, _, _ := floorOf(module + c.pkg); got != c.floor {
			t.Errorf("floorOf(%s) = %d, want %d", c.pkg, got, c.floor)
		}
	}
}

// TestEveryDomainPackageUsesOnlyTheStandardLibrary: whatever a package of
// domain/ depends on, however indirectly, is the standard library or
// domain/ itself (domain/licensing and domain/viewing check themselves
// too; a new domain package is covered here from its first line).
func TestEveryDomainPackageUsesOnlyTheStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "../../../domain/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if !strings.HasPrefix(pkg, module+"domain/") {
			t.Errorf("domain/ depends on %s: it may use only the standard library", pkg)
		}
	}
}
