package deploytest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/jobs"
)

// TestTheSweepCoversEveryShard: the silent views state machine hands the
// job function each shard of the index of open views, as many as the
// stores spread the views over, every minute, and its schedule is the
// parameter's.
func TestTheSweepCoversEveryShard(t *testing.T) {
	d := load(t)
	sm := get(d.root, "Resources", "SilentViewsStateMachine", "Properties")
	if sm == nil {
		t.Fatal("template.yaml has no SilentViewsStateMachine")
	}
	shards := value(get(sm, "Definition", "States", "Shards", "Parameters", "shards.$"))
	if want := fmt.Sprintf("States.ArrayRange(0, %d, 1)", viewing.LiveShards-1); shards != want {
		t.Errorf("the sweep's shards = %q, want %q (viewing.LiveShards)", shards, want)
	}
	if every := value(get(sm, "Events", "EveryMinute", "Properties", "Schedule")); every != fmt.Sprintf("rate(%d minute)", int(viewing.SweepEvery.Minutes())) {
		t.Errorf("the sweep runs at %q, want every %v (viewing.SweepEvery)", every, viewing.SweepEvery)
	}
	if task := value(get(sm, "Definition", "States", "Sweep", "ItemProcessor", "States", "Shard", "Parameters", "FunctionName")); !strings.Contains(task, "JobsFunctionArn") {
		t.Errorf("the sweep invokes %q, want the job function", task)
	}
}

// TestTheDueWithdrawalsRunEveryMinute: the job function is invoked every
// minute with the input its handler reads as the run of due withdrawals.
func TestTheDueWithdrawalsRunEveryMinute(t *testing.T) {
	d := load(t)
	ev := get(d.root, "Resources", "JobsFunction", "Properties", "Events", "DueWithdrawals", "Properties")
	if ev == nil {
		t.Fatal("JobsFunction has no DueWithdrawals schedule")
	}
	if v := value(get(ev, "Schedule")); v != "rate(1 minute)" {
		t.Errorf("the due withdrawals run at %q, want every minute", v)
	}
	var in jobs.Batch
	if err := json.Unmarshal([]byte(value(get(ev, "Input"))), &in); err != nil || !in.Withdrawals {
		t.Errorf("the schedule's input %q = %+v, %v; want a batch asking for the due withdrawals", value(get(ev, "Input")), in, err)
	}
}
