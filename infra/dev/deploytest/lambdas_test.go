package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// notInALambda are the packages no Lambda may link: development tooling
// (infra/dev), operator tools (infra/ops), the test doubles and contract
// suites beside the adapters, YAML, the SDK's clients and configuration
// chain that only workstations use, and test support; an entry with only
// set is allowed in that function alone.
var notInALambda = []struct {
	pattern, why string
	only         string
}{
	{`^github\.com/dlicense/dlicense/infra/dev(/|$)`, "development tooling (the embedded store, the local runtime, the harnesses)", ""},
	{`^github\.com/dlicense/dlicense/infra/ops(/|$)`, "operator tools (the event-source emulator, rebuild, withdraw, redrive)", ""},
	{`^github\.com/dlicense/dlicense/infra/(memstore|storetest|dynamo/dynamotest|projector/projectortest)$`, "test doubles beside the adapters (the memory twin, the contract suites, DynamoDB Local, stream records)", ""},
	{`yaml`, "YAML parsing", ""},
	{`^github\.com/aws/aws-sdk-go-v2/service/(sqs|ssm|sts|sso|ssooidc)$`, "an SDK client the Lambdas do not call", ""},
	{`^github\.com/aws/aws-sdk-go-v2/service/dynamodbstreams$`, "the stream reader, which only the stream function calls (its redrive)", "functions/streams"},
	{`^github\.com/aws/aws-sdk-go-v2/config$`, "the SDK's workstation credential chain (dynamo.AWSConfig reads the Lambda environment)", ""},
	{`^(testing|net/http/httptest/internal)$|^testing/`, "test support", ""},
}

// lambdaDeps lists the packages the Lambda main in dir links, built as
// `make build` builds it.
func lambdaDeps(t *testing.T, dir string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-tags", lambdaTags(t), dir)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", dir, err, out)
	}
	return strings.Fields(string(out))
}

// lambdaTags are the build tags of the Makefile's Lambda build.
func lambdaTags(t *testing.T) string {
	mb, err := os.ReadFile("../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^LAMBDA_TAGS := (\S+)$`).FindSubmatch(mb)
	if m == nil {
		t.Fatal("the Makefile sets no LAMBDA_TAGS")
	}
	return string(m[1])
}

// forbidden returns, for each package of deps the program name may not
// link, why.
func forbidden(name string, deps []string) []string {
	var bad []string
	for _, d := range deps {
		for _, n := range notInALambda {
			if n.only != name && regexp.MustCompile(n.pattern).MatchString(d) {
				bad = append(bad, d+": "+n.why)
			}
		}
	}
	return bad
}

// TestLambdasLinkOnlyProductionCode: every functions/<name> main links the
// production adapters and nothing of the tooling beside them.
func TestLambdasLinkOnlyProductionCode(t *testing.T) {
	mains, err := filepath.Glob("../../../functions/*/main.go")
	if err != nil || len(mains) < 2 {
		t.Fatalf("functions/*/main.go: %v (%d found)", err, len(mains))
	}
	for _, m := range mains {
		dir, name := "./"+filepath.ToSlash(filepath.Dir(m)), "functions/"+filepath.Base(filepath.Dir(m))
		t.Run(name, func(t *testing.T) {
			deps := lambdaDeps(t, dir)
			if !slices.Contains(deps, "github.com/dlicense/dlicense/infra/setup") {
				t.Errorf("%s does not link infra/setup: every Lambda is wired there", name)
			}
			for _, b := range forbidden(name, deps) {
				t.Errorf("%s links %s", name, b)
			}
		})
	}
}

// TestTheLinkCheckSeesDevCode: the check above finds what it looks for in
// a program that does link the tooling (the local server).
func TestTheLinkCheckSeesDevCode(t *testing.T) {
	bad := forbidden("dlicense-local", lambdaDeps(t, "../../../infra/dev/cmd/dlicense-local"))
	for _, want := range []string{"infra/memstore", "infra/dev/local", "infra/ops/eventsource", "yaml", "service/dynamodbstreams"} {
		if !slices.ContainsFunc(bad, func(b string) bool { return strings.Contains(b, want) }) {
			t.Errorf("the check missed %s in dlicense-local; it found %q", want, bad)
		}
	}
}

// TestTheStreamFunctionLinksNoHandler: the stream function links
// infra/httpapi through infra/setup, but none of the API's handlers (the
// route tables are read only when the API is built), so its bootstrap
// carries no code of the API.
func TestTheStreamFunctionLinksNoHandler(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "streams")
	build := exec.Command("go", "build", "-tags", lambdaTags(t), "-trimpath", "-o", bin, "../../../functions/streams")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	syms := string(out)
	for _, handler := range []string{"infra/httpapi.(*api).acquire", "infra/httpapi.(*api).startView", "infra/httpapi.(*api).console"} {
		if strings.Contains(syms, handler) {
			t.Errorf("the stream function links %s", handler)
		}
	}
	if !strings.Contains(syms, "infra/projector.(*Processor).Handle") {
		t.Errorf("the check reads no symbol of the stream function: it would miss a handler")
	}
}
