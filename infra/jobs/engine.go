package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
)

// Results keep a job's results: each slice's summary written once (a
// slice run again keeps the first, equal one), and the job's.
type Results interface {
	SaveSlice(ctx context.Context, job string, segment int, data []byte) error
	Slices(ctx context.Context, job string) ([][]byte, error)
	SaveSummary(ctx context.Context, job string, data []byte) error
}

// Batch is what the distributed engine hands the job function: a batch of
// segment numbers (the Distributed Map's ItemBatcher: Items) with what
// every item of the job shares (BatchInput); or, with Reduce, the end of
// the job.
type Batch struct {
	Items      []int      `json:"Items"`
	BatchInput BatchInput `json:"BatchInput"`
	// Reduce asks for the job's summary, from its slices' (the state
	// machine's last step); BatchInput names the job.
	Reduce bool `json:"reduce,omitempty"`
	// Sweep, instead of a job's batch, asks for the sweep of silent views
	// of one shard (the silent views state machine, every minute).
	Sweep *SweepShard `json:"sweep,omitempty"`
	// Withdrawals asks for the run of the due withdrawals (the schedule,
	// every minute).
	Withdrawals bool `json:"withdrawals,omitempty"`
}

// DueWithdrawalsBudget bounds one scheduled run of the due withdrawals:
// within the minute between runs, so that two never overlap for long.
const DueWithdrawalsBudget = 50 * time.Second

// SweepShard names the shard of open views a sweep reads.
type SweepShard struct {
	Shard int `json:"shard"`
}

// BatchInput is what every slice of a job shares.
type BatchInput struct {
	Job    string          `json:"job"`
	Kind   string          `json:"kind"`
	Total  int             `json:"total"`
	Policy json.RawMessage `json:"policy,omitempty"`
}

// BatchResult is what the job function answers: the segments it ran, and,
// for a reduce, the job's summary.
type BatchResult struct {
	Segments []int    `json:"segments"`
	Members  int      `json:"members"`
	Summary  *Summary `json:"summary,omitempty"`
	// Sweep is what a sweep of silent views did.
	Sweep *viewing.Sweep `json:"sweep,omitempty"`
	// Withdrawals are the due withdrawals a run worked on, as it left them.
	Withdrawals []licensing.Withdrawal `json:"withdrawals,omitempty"`
}

// Handle runs a batch of slices and writes each slice's summary once; or,
// for a reduce, merges the slices written into the job's summary; or, for
// a sweep, closes the silent views of a shard. An
// error makes the engine retry the whole batch: slices already written
// are not written again.
func Handle(ctx context.Context, st Stores, res Results, b Batch) (BatchResult, error) {
	now := time.Now
	if st.Now != nil {
		now = st.Now
	}
	if b.Withdrawals {
		if st.Licensing == nil || st.Withdrawals == nil || st.Holders == nil {
			return BatchResult{}, errors.New("the due withdrawals need the licensing service, the withdrawals and the holders")
		}
		ws, err := DueWithdrawals(ctx, st.Licensing, st.Withdrawals, st.Holders, now(), DueWithdrawalsBudget)
		return BatchResult{Segments: []int{}, Withdrawals: ws}, err
	}
	if b.Sweep != nil {
		if st.Silent == nil {
			return BatchResult{}, errors.New("the sweep of silent views has no store of screens")
		}
		sw, err := viewing.SweepSilent(ctx, st.Silent, b.Sweep.Shard, now())
		if err != nil {
			return BatchResult{}, err
		}
		return BatchResult{Segments: []int{}, Sweep: &sw}, nil
	}
	in := b.BatchInput
	if !kernel.ValidID(in.Job) {
		return BatchResult{}, kernel.Invalid("job", "job must be 1 to 64 letters, digits or . _ : -")
	}
	if b.Reduce {
		sum, err := Reduce(ctx, st, res, in)
		if err != nil {
			return BatchResult{}, err
		}
		return BatchResult{Members: sum.Members, Summary: &sum}, nil
	}
	sl := Slice{Kind: in.Kind, Total: in.Total}
	// The state machine passes its input's policy: null but for a what-if.
	if doc := bytes.TrimSpace(in.Policy); len(doc) > 0 && !bytes.Equal(doc, []byte("null")) {
		p, err := licensing.ParsePolicy(bytes.NewReader(doc))
		if err != nil {
			return BatchResult{}, kernel.Invalid("policy", "%v", err)
		}
		sl.Policy = p
	}
	out := BatchResult{Segments: []int{}}
	for _, seg := range b.Items {
		sl.Segment = seg
		sum, err := Run(ctx, st, sl)
		if err != nil {
			return BatchResult{}, err
		}
		data, err := json.Marshal(sum)
		if err != nil {
			return BatchResult{}, err
		}
		if err := res.SaveSlice(ctx, in.Job, seg, data); err != nil {
			return BatchResult{}, err
		}
		out.Segments = append(out.Segments, seg)
		out.Members += sum.Members
	}
	return out, nil
}

// Reduce merges the slices written of job into its summary, does what
// the job does at its end (Finish), and writes the summary.
func Reduce(ctx context.Context, st Stores, res Results, job BatchInput) (Summary, error) {
	slices, err := res.Slices(ctx, job.Job)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Kind: job.Kind}
	for i, b := range slices {
		var s Summary
		if err := json.Unmarshal(b, &s); err != nil {
			return Summary{}, fmt.Errorf("job %s, slice %d: %w", job.Job, i, err)
		}
		sum.Merge(s)
	}
	if sum, err = Finish(ctx, st, sum, job.Total); err != nil {
		return Summary{}, err
	}
	data, err := json.Marshal(sum)
	if err != nil {
		return Summary{}, err
	}
	return sum, res.SaveSummary(ctx, job.Job, data)
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
