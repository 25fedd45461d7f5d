package stepjobs_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/storetest"
)

// TestTheSweepOfSilentViewsOnStepFunctions: the template's silent views
// state machine, run by moto's Step Functions interpreter, hands each
// shard of the index of open views to the job function (built as for
// Lambda, under the Runtime Interface Emulator, on DynamoDB Local); the
// views whose heartbeats stopped are closed, the one still playing and
// the stopped one are not.
func TestTheSweepOfSilentViewsOnStepFunctions(t *testing.T) {
	endpoint := dynamotest.Require(t)
	db, table := dynamotest.Table(t)
	stores := dynamo.OneTable(db, table)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	clock := storetest.NewClock(now.Add(-10 * time.Minute))
	svc := viewing.NewService(stores.Views, licensing.DefaultPolicy(), clock, &storetest.IDs{})
	start := func(member string) viewing.Started {
		st, err := svc.Start(ctx, viewing.Start{Member: member, Plan: "basic", Device: "tv", Title: "tt-first-light"}, "")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// Members in as many shards as there are, each with a view left
	// silent nine minutes ago; one more plays on, one more stopped.
	var silent []string
	for i := 0; len(silent) < 24; i++ {
		m := "sweep-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		silent = append(silent, m)
		start(m)
	}
	playing, stopped := start("sweep-playing"), start("sweep-stopped")
	clock.Advance(time.Minute)
	if _, err := svc.Stop(ctx, viewing.Stop{Member: "sweep-stopped", Device: "tv", View: stopped.View.ID, PositionMs: 60_000}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(9 * time.Minute)
	if _, err := svc.Beat(ctx, viewing.Beat{Member: "sweep-playing", Plan: "basic", Device: "tv", View: playing.View.ID, PositionMs: 600_000, State: viewing.Playing, Seq: 1}); err != nil {
		t.Fatal(err)
	}

	fn := jobFunction(t, endpoint, table)
	moto := motoServer(t, "MOTO_PORT="+fn[strings.LastIndex(fn, ":")+1:])
	resp, err := http.Post(moto+"/moto-api/config", "application/json", strings.NewReader(`{"stepfunctions":{"execute_state_machine":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	client := sfn.New(sfn.Options{Region: "us-east-1", BaseEndpoint: aws.String(moto), Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")})
	// The emulator serves one invocation at a time (one Lambda instance):
	// the shards are swept one after the other here.
	def := strings.ReplaceAll(definitionOf(t, "SilentViewsStateMachine"), "arn:aws:lambda:us-east-1:123456789012:function:jobs", "function")
	if !strings.Contains(def, `"MaxConcurrency":16`) {
		t.Fatalf("the sweep's Map runs %s: want 16 at once", def)
	}
	def = strings.Replace(def, `"MaxConcurrency":16`, `"MaxConcurrency":1`, 1)
	sm, err := client.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String("dlicense-silent-views"), Definition: aws.String(def), RoleArn: aws.String("arn:aws:iam::123456789012:role/sweep")})
	if err != nil {
		t.Fatalf("create the template's state machine: %v", err)
	}
	x, err := client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm.StateMachineArn, Input: aws.String("{}")})
	if err != nil {
		t.Fatal(err)
	}
	var out *sfn.DescribeExecutionOutput
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if out, err = client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: x.ExecutionArn}); err != nil || out.Status != types.ExecutionStatusRunning || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || out.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("the sweep = %+v, %v; want SUCCEEDED", out, err)
	}
	var sweeps []viewing.Sweep
	var results []struct {
		Sweep viewing.Sweep `json:"sweep"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.Output)), &results); err != nil {
		t.Fatalf("the sweep's output %s: %v", aws.ToString(out.Output), err)
	}
	closed, shards := 0, map[int]bool{}
	for _, r := range results {
		sweeps = append(sweeps, r.Sweep)
		closed += r.Sweep.Closed
		shards[r.Sweep.Shard] = true
	}
	if len(shards) != viewing.LiveShards || closed != len(silent) {
		t.Errorf("the sweep's shards = %+v; want each of the %d shards swept once and %d views closed", sweeps, viewing.LiveShards, len(silent))
	}
	for _, m := range append(silent, "sweep-playing", "sweep-stopped") {
		vs, err := stores.Views.Views(ctx, m)
		if err != nil || len(vs) != 1 {
			t.Fatalf("views of %s = %v, %v", m, vs, err)
		}
		if want := m != "sweep-playing" && m != "sweep-stopped"; !vs[0].Closed.IsZero() != want {
			t.Errorf("%s's view closed at %v; want closed %v", m, vs[0].Closed, want)
		}
	}
}
