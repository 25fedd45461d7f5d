package stepjobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"go.yaml.in/yaml/v3"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/infra/jobs"
	"github.com/dlicense/dlicense/infra/memstore"
	"github.com/dlicense/dlicense/infra/stepjobs"
)

// motoServer runs moto's AWS emulator (its Step Functions API) on a free
// loopback port for the test. Under CI=true its absence fails the test.
func motoServer(t *testing.T, env ...string) string {
	t.Helper()
	path, err := exec.LookPath("moto_server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("moto_server: %v (CI=true: it must not be skipped)", err)
		}
		t.Skipf("moto_server: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(path, "-p", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(endpoint + "/moto-api/"); err == nil {
			resp.Body.Close()
			return endpoint
		}
	}
	t.Fatalf("moto_server did not answer on %s", endpoint)
	return ""
}

// definition is the template's JobsStateMachine definition, as JSON, its
// substitutions made.
func definition(t *testing.T) string {
	t.Helper()
	return definitionOf(t, "JobsStateMachine")
}

// definitionOf is the definition of the template's state machine
// logicalID, as JSON, its substitutions made.
func definitionOf(t *testing.T, logicalID string) string {
	t.Helper()
	b, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Resources map[string]struct {
			Properties struct {
				Definition any `yaml:"Definition"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	def, err := json.Marshal(doc.Resources[logicalID].Properties.Definition)
	if err != nil || len(def) < 100 {
		t.Fatalf("%s's definition: %s, %v", logicalID, def, err)
	}
	return strings.ReplaceAll(string(def), "${JobsFunctionArn}", "arn:aws:lambda:us-east-1:123456789012:function:jobs")
}

// TestTheEngineOnStepFunctions: on moto's Step Functions, with the
// template's definition, a job starts as an execution named by its id;
// another of its kind is refused while it runs, one of another kind is
// not; its status reads the execution and the slices it has written; an
// unknown job is not found.
func TestTheEngineOnStepFunctions(t *testing.T) {
	endpoint := motoServer(t)
	ctx := context.Background()
	client := sfn.New(sfn.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")})
	sm, err := client.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("dlicense-jobs"), Definition: aws.String(definition(t)), RoleArn: aws.String("arn:aws:iam::123456789012:role/jobs")})
	if err != nil {
		t.Fatalf("create the template's state machine: %v", err)
	}
	results := memstore.New()
	e := &stepjobs.Engine{SFN: client, StateMachine: aws.ToString(sm.StateMachineArn), Results: results}
	policy := json.RawMessage(`{"version":"p"}`)
	if err := e.Start(ctx, "whatif-aaa", jobs.Request{Kind: jobs.KindWhatIf, Policy: policy, Segments: 8, MaxConcurrency: 4}); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "whatif-bbb", jobs.Request{Kind: jobs.KindWhatIf, Policy: policy, Segments: 8, MaxConcurrency: 4}); kernel.KindOf(err) != kernel.KindConflict {
		t.Errorf("a second what-if while one runs = %v, want JOB_RUNNING", err)
	}
	if err := e.Start(ctx, "recount-ccc", jobs.Request{Kind: jobs.KindRecount, Segments: 2, MaxConcurrency: 1}); err != nil {
		t.Errorf("a recount while a what-if runs = %v", err)
	}
	results.SaveSlice(ctx, "whatif-aaa", 3, []byte(`{"kind":"whatif","segments":1,"members":5,"events":20,"errors":1}`))
	st, err := e.Status(ctx, "whatif-aaa")
	if err != nil || st.State != jobs.StateRunning || st.Kind != jobs.KindWhatIf || st.Segments != 8 || st.SegmentsDone != 1 || st.Members != 5 || st.Errors != 1 {
		t.Errorf("status = %+v, %v; want RUNNING, 1 of 8 segments done, 5 members, 1 error", st, err)
	}
	if _, err := e.Status(ctx, "whatif-zzz"); kernel.KindOf(err) != kernel.KindNotFound {
		t.Errorf("an unknown job = %v, want JOB_NOT_FOUND", err)
	}
}
