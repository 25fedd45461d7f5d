package jobs

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// The states of a job.
const (
	StateRunning   = "RUNNING"
	StateSucceeded = "SUCCEEDED"
	StateFailed    = "FAILED"
)

// Codes of the job routes' errors.
const (
	CodeJobRunning  = "JOB_RUNNING"
	CodeJobNotFound = "JOB_NOT_FOUND"
)

// Status is where a job is.
type Status struct {
	ID    string `json:"job_id"`
	Kind  string `json:"kind"`
	State string `json:"state"`
	// Segments is the job's slices; SegmentsDone those whose summary is
	// written; Members and Errors are theirs, so far.
	Segments     int        `json:"segments"`
	SegmentsDone int        `json:"segments_done"`
	Members      int        `json:"members"`
	Errors       int        `json:"errors"`
	Started      time.Time  `json:"started_at"`
	Ended        *time.Time `json:"ended_at,omitempty"`
	// Summary is the job's, once it succeeded.
	Summary *Summary `json:"summary,omitempty"`
}

// Request asks for a job.
type Request struct {
	Kind string
	// Policy is what-if's policy document, checked already.
	Policy         json.RawMessage
	Segments       int
	MaxConcurrency int
}

// Engine starts jobs and says where they are: Step Functions in AWS, a
// pool of workers locally.
type Engine interface {
	// Start starts a job with id; a job of the same kind running refuses
	// it (JOB_RUNNING).
	Start(ctx context.Context, id string, r Request) error
	// Status is where job id is (JOB_NOT_FOUND if none).
	Status(ctx context.Context, id string) (Status, error)
}

// Progress reads, from a job's results, the slices written so far.
func Progress(ctx context.Context, res Results, st *Status) error {
	slices, err := res.Slices(ctx, st.ID)
	if err != nil {
		return err
	}
	st.SegmentsDone, st.Members, st.Errors = len(slices), 0, 0
	for _, b := range slices {
		var s Summary
		if json.Unmarshal(b, &s) == nil {
			st.Members += s.Members
			st.Errors += s.Errors
		}
	}
	return nil
}

// Local is the engine of local runs: a job runs in the process, its slices
// on a pool of workers through the job function's handler (Handle), each
// slice's summary written to the results as in AWS, then the reduce.
type Local struct {
	Stores  Stores
	Results Results
	Workers int

	mu   sync.Mutex
	jobs map[string]*Status
}

// Start implements Engine.
func (l *Local) Start(_ context.Context, id string, r Request) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.jobs == nil {
		l.jobs = map[string]*Status{}
	}
	for _, j := range l.jobs {
		if j.Kind == r.Kind && j.State == StateRunning {
			return kernel.Errorf(kernel.KindConflict, CodeJobRunning, "a %s job is running (%s)", r.Kind, j.ID)
		}
	}
	st := &Status{ID: id, Kind: r.Kind, State: StateRunning, Segments: r.Segments, Started: time.Now().UTC()}
	l.jobs[id] = st
	in := BatchInput{Job: id, Kind: r.Kind, Total: r.Segments, Policy: r.Policy}
	go l.run(in, st, max(l.Workers, 1))
	return nil
}

func (l *Local) run(in BatchInput, st *Status, workers int) {
	ctx := context.Background()
	segments := make(chan int)
	var wg sync.WaitGroup
	var failed sync.Map
	for range workers {
		wg.Go(func() {
			for seg := range segments {
				var err error
				for range 3 { // the engine's retries
					if _, err = Handle(ctx, l.Stores, l.Results, Batch{Items: []int{seg}, BatchInput: in}); err == nil {
						break
					}
				}
				if err != nil {
					failed.Store(seg, err)
				}
			}
		})
	}
	for seg := range in.Total {
		segments <- seg
	}
	close(segments)
	wg.Wait()
	out, err := Handle(ctx, l.Stores, l.Results, Batch{Reduce: true, BatchInput: in})
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now().UTC()
	st.Ended, st.State = &now, StateSucceeded
	nFailed := 0
	failed.Range(func(any, any) bool { nFailed++; return true })
	if err != nil || nFailed*20 > in.Total { // more than 5 %: the Map's tolerance
		st.State = StateFailed
		return
	}
	st.Summary = out.Summary
}

// Status implements Engine.
func (l *Local) Status(ctx context.Context, id string) (Status, error) {
	l.mu.Lock()
	j := l.jobs[id]
	var st Status
	if j != nil {
		st = *j
	}
	l.mu.Unlock()
	if j == nil {
		return Status{}, kernel.Errorf(kernel.KindNotFound, CodeJobNotFound, "no such job")
	}
	if err := Progress(ctx, l.Results, &st); err != nil {
		return Status{}, err
	}
	return st, nil
}

// CheckRequest refuses a request the engine cannot run: an unknown kind,
// segments out of 1 to 1000 (a Distributed Map over a generated range), a
// what-if without a valid policy.
func CheckRequest(r Request) error {
	switch {
	case !slices.Contains(Kinds, r.Kind):
		return kernel.Invalid("kind", "kind must be one of %v", Kinds)
	case r.Segments < 1 || r.Segments > 1000:
		return kernel.Invalid("segments", "segments must be from 1 to 1000")
	case r.MaxConcurrency < 1 || r.MaxConcurrency > 10000:
		return kernel.Invalid("max_concurrency", "max_concurrency must be from 1 to 10000")
	case r.Kind == KindWhatIf && len(r.Policy) == 0:
		return kernel.Invalid("policy", "a what-if needs a policy")
	case r.Kind != KindWhatIf && len(r.Policy) > 0:
		return kernel.Invalid("policy", "only a what-if takes a policy")
	}
	if r.Kind == KindWhatIf {
		if _, err := licensing.ParsePolicy(bytesReader(r.Policy)); err != nil {
			return &kernel.Error{Kind: kernel.KindInvalid, Code: "INVALID_POLICY", Message: err.Error(), Field: "policy"}
		}
	}
	return nil
}
