package deploytest

import (
	"os/exec"
	"regexp"
	"testing"
)

// TestEveryTargetMakeHelpListsRuns: each target `make help` lists is one
// make knows how to run (a dry run, make -n, succeeds): none names a rule
// that does not exist.
func TestEveryTargetMakeHelpListsRuns(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	_, makefile := readSources(t)
	targets := regexp.MustCompile(`(?m)^## ([a-z][a-zA-Z-]*): `).FindAllStringSubmatch(makefile, -1)
	if len(targets) < 10 {
		t.Fatalf("make help lists %d targets, want the Makefile's", len(targets))
	}
	for _, m := range targets {
		cmd := exec.Command("make", "-n", m[1])
		cmd.Dir = "../../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("make -n %s: %v\n%s", m[1], err, out)
		}
	}
}
