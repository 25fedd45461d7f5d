package stepjobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/invoke"
	"github.com/dlicense/dlicense/infra/jobs"
	"github.com/dlicense/dlicense/infra/setup"
	"github.com/dlicense/dlicense/infra/stepjobs"
)

// jobFunction runs the job function's bootstrap, built as for Lambda, under
// the AWS Lambda Runtime Interface Emulator (what SAM runs functions in),
// with the environment the template gives it, over the table named on
// DynamoDB Local at endpoint (infra/invoke): the address of its invoke API
// (POST /2015-03-31/functions/function/invocations).
func jobFunction(t *testing.T, endpoint, table string) string {
	t.Helper()
	root, dir := filepath.Join("..", ".."), t.TempDir()
	if err := invoke.Build(context.Background(), root, dir, "JobsFunction"); err != nil {
		t.Fatal(err)
	}
	env, err := invoke.TemplateEnv(filepath.Join(root, "template.yaml"), "JobsFunction", invoke.Local{Table: table, StackName: "dlicense-test", Region: "us-east-1", AccountID: "123456789012"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := invoke.Start(filepath.Join(dir, "aws-lambda-rie"), filepath.Join(dir, "JobsFunction", "bootstrap"), invoke.Environ(invoke.ForLocal(env, endpoint, "", "us-east-1")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Stop()
		if t.Failed() {
			t.Logf("the job function's logs:\n%s", e.Logs())
		}
	})
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", e.Addr()); err == nil {
			c.Close()
			return e.Addr()
		}
	}
	t.Fatalf("the Runtime Interface Emulator did not listen on %s", e.Addr())
	return ""
}

// interpretable is the template's definition as moto's interpreter takes
// it. Its ASL grammar has no ItemBatcher: the batch the Distributed Map
// builds (Items, and BatchInput) is built by an ItemSelector instead, one
// segment a batch, as the template's MaxItemsPerBatch 1 does; and it reads a
// percentage only with a decimal point. The job function's own name is
// "function", the one the emulator serves.
func interpretable(t *testing.T) string {
	t.Helper()
	var def map[string]any
	if err := json.Unmarshal([]byte(strings.ReplaceAll(definition(t), "arn:aws:lambda:us-east-1:123456789012:function:jobs", "function")), &def); err != nil {
		t.Fatal(err)
	}
	slices := def["States"].(map[string]any)["Slices"].(map[string]any)
	batcher, ok := slices["ItemBatcher"].(map[string]any)
	if !ok {
		t.Fatal("the Slices map has no ItemBatcher")
	}
	if batcher["MaxItemsPerBatch"] != 1.0 {
		t.Fatalf("the template batches %v segments: the ItemSelector below builds batches of one", batcher["MaxItemsPerBatch"])
	}
	delete(slices, "ItemBatcher")
	slices["ItemSelector"] = map[string]any{"Items.$": "States.Array($$.Map.Item.Value)", "BatchInput": batcher["BatchInput"]}
	b, _ := json.Marshal(def)
	return strings.Replace(string(b), `"ToleratedFailurePercentage":5,`, `"ToleratedFailurePercentage":5.0,`, 1)
}

// TestAJobEndToEndOnStepFunctions: the template's state machine, run by
// moto's Step Functions interpreter, hands its batches of segments to the
// job function, built as for Lambda and running under the Runtime
// Interface Emulator against DynamoDB Local; the engine the API uses
// starts a fleet what-if, a recount and a counters job and follows them
// to their end; their summaries equal the same jobs run in the process,
// and the counters job's end (the reduce step) wrote the counters.
//
// The emulator serves one invocation at a time (one Lambda instance), so
// the jobs run at MaxConcurrency 1; and moto takes an error the emulator
// answers for a success, so this test shows the happy path end to end, and
// the job function's own tests its retries.
func TestAJobEndToEndOnStepFunctions(t *testing.T) {
	endpoint := dynamotest.Require(t)
	db, table := dynamotest.Table(t)
	stores := dynamo.OneTable(db, table)
	ctx := context.Background()
	// A fleet: 60 members, each with a few titles on a few devices.
	svc := licensing.NewService(stores.Log, licensing.DefaultPolicy(), setup.SystemClock{}, setup.RandomIDs{})
	titles := []string{"tt-first-light", "tt-low-tide", "tt-salt-and-rope", "tt-lighthouse", "tt-ice-road"}
	for m := range 60 {
		for i := range 1 + m%4 {
			svc.Execute(ctx, licensing.Acquire{Member: fmt.Sprintf("sfn-%03d", m), Plan: "premium", Device: fmt.Sprintf("d%d", i%3), Title: titles[(m+i)%len(titles)]}, "")
		}
	}
	fn := jobFunction(t, endpoint, table)
	policy := stricterPolicy(t)
	p, err := licensing.ParsePolicy(bytes.NewReader(policy))
	if err != nil {
		t.Fatal(err)
	}
	local := jobs.Stores{Members: stores.Log, Events: stores.Log, Refusals: stores.Refusals, Counters: stores.Counters}
	for _, c := range []struct {
		id  string
		req jobs.Request
		sl  jobs.Slice
	}{
		{"whatif-e2e", jobs.Request{Kind: jobs.KindWhatIf, Policy: policy, Segments: 6, MaxConcurrency: 1}, jobs.Slice{Kind: jobs.KindWhatIf, Total: 6, Policy: p}},
		{"recount-e2e", jobs.Request{Kind: jobs.KindRecount, Segments: 4, MaxConcurrency: 1}, jobs.Slice{Kind: jobs.KindRecount, Total: 4}},
		// The counters job writes the counters at its end: the reduce step.
		{"counters-e2e", jobs.Request{Kind: jobs.KindCounters, Segments: 3, MaxConcurrency: 1}, jobs.Slice{Kind: jobs.KindCounters, Total: 3}},
	} {
		// moto's interpreter fails a second execution in one server (it
		// cannot copy its first's state): a server for each job.
		moto := motoServer(t, "MOTO_PORT="+fn[strings.LastIndex(fn, ":")+1:])
		resp, err := http.Post(moto+"/moto-api/config", "application/json", strings.NewReader(`{"stepfunctions":{"execute_state_machine":true}}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		client := sfn.New(sfn.Options{Region: "us-east-1", BaseEndpoint: aws.String(moto), Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")})
		sm, err := client.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("dlicense-jobs"), Definition: aws.String(interpretable(t)), RoleArn: aws.String("arn:aws:iam::123456789012:role/jobs")})
		if err != nil {
			t.Fatalf("create the template's state machine: %v", err)
		}
		e := &stepjobs.Engine{SFN: client, StateMachine: aws.ToString(sm.StateMachineArn), Results: stores.JobResults}
		if err := e.Start(ctx, c.id, c.req); err != nil {
			t.Fatalf("start %s: %v", c.id, err)
		}
		var st jobs.Status
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if st, err = e.Status(ctx, c.id); err != nil || st.State != jobs.StateRunning || time.Now().After(deadline) {
				break
			}
		}
		if err != nil || st.State != jobs.StateSucceeded || st.Summary == nil || st.SegmentsDone != c.sl.Total {
			t.Fatalf("%s = %+v, %v; want SUCCEEDED with every segment done and a summary", c.id, st, err)
		}
		want, failed := jobs.RunLocal(ctx, local, c.sl, 2, 1, nil)
		if len(failed) > 0 || want.Members != 60 {
			t.Fatalf("%s in the process = %+v, %v", c.id, want, failed)
		}
		if c.sl.Kind == jobs.KindCounters {
			// No stream function runs here: the counters are the job's.
			for scope, counts := range want.Counts {
				if live, err := stores.Counters.Counts(ctx, scope); err != nil || !reflect.DeepEqual(live, counts) {
					t.Errorf("counter %s after the job = %v (%v), want %v", scope, live, err, counts)
				}
			}
		}
		if want, err = jobs.Finish(ctx, local, want, c.sl.Total); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*st.Summary, want) {
			t.Errorf("%s on Step Functions = %+v\nin the process %+v", c.id, *st.Summary, want)
		}
		t.Logf("%s on Step Functions: %d segments, %d members, %d events, %d flips, %d counter scopes", c.id, st.SegmentsDone, st.Summary.Members, st.Summary.Events, st.Summary.Flips, len(st.Summary.Counts))
	}
}

// stricterPolicy is the shipped policy with every studio's title quota at 1
// a year and the premium plan at one device.
func stricterPolicy(t *testing.T) json.RawMessage {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(licensing.DefaultPolicyJSON(), &doc); err != nil {
		t.Fatal(err)
	}
	doc["version"] = "stricter"
	for _, s := range doc["studios"].(map[string]any) {
		if q, ok := s.(map[string]any)["title_quota"].(map[string]any); ok {
			q["count"] = 1
		}
	}
	doc["plans"].(map[string]any)["premium"].(map[string]any)["max_download_devices"] = 1
	b, _ := json.Marshal(doc)
	return b
}
