package licensing

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDomainUsesOnlyTheStandardLibrary keeps domain/ free of AWS, HTTP and
// every third-party package: dependencies point inward.
func TestDomainUsesOnlyTheStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "../...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	mod, err := exec.Command("go", "list", "-m").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	self := strings.TrimSpace(string(mod)) + "/domain/"
	for _, pkg := range strings.Fields(string(out)) {
		if !strings.HasPrefix(pkg, self) {
			t.Errorf("domain depends on %s; it may use only the standard library", pkg)
		}
	}
	std, err := exec.Command("go", "list", "-deps", "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, banned := range []string{"net/http", "os/exec", "database/sql"} {
		for _, pkg := range strings.Fields(string(std)) {
			if pkg == banned {
				t.Errorf("domain depends on %s: no I/O in the domain", banned)
			}
		}
	}
}
