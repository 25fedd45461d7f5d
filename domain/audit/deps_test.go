package audit

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAuditUsesOnlyTheStandardLibrary keeps the audit trail's types free of
// AWS, HTTP, I/O and third-party packages, like licensing: it may use the
// standard library and the rest of domain/ only.
func TestAuditUsesOnlyTheStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}|{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	mod, err := exec.Command("go", "list", "-m").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	self := strings.TrimSpace(string(mod)) + "/domain/"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		nonStandard, pkg, _ := strings.Cut(line, "|")
		if nonStandard != "" && !strings.HasPrefix(nonStandard, self) {
			t.Errorf("domain/audit depends on %s; it may use only the standard library", nonStandard)
		}
		switch pkg {
		case "net/http", "os/exec", "database/sql":
			t.Errorf("domain/audit depends on %s: no I/O in the domain", pkg)
		}
	}
}
