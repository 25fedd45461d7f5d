package projector_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/infra/changestream"
	"github.com/dlicense/dlicense/infra/ops/eventsource"
)

// recorder is a stream function that records what it is given and answers
// as answer says (success when answer is nil).
type recorder struct {
	mu      sync.Mutex
	calls   [][]string // sequence numbers per invocation
	records []events.DynamoDBEventRecord
	answer  func(call int, seqs []string) (events.DynamoDBEventResponse, error)
}

func (r *recorder) handle(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var seqs []string
	for _, rec := range ev.Records {
		seqs = append(seqs, rec.Change.SequenceNumber)
	}
	r.calls = append(r.calls, seqs)
	r.records = append(r.records, ev.Records...)
	if r.answer == nil {
		return events.DynamoDBEventResponse{}, nil
	}
	return r.answer(len(r.calls), seqs)
}

func (r *recorder) delivered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []string
	for _, c := range r.calls {
		all = append(all, c...)
	}
	return all
}

func failures(seqs ...string) events.DynamoDBEventResponse {
	var resp events.DynamoDBEventResponse
	for _, s := range seqs {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: s})
	}
	return resp
}

func newPoller(t *testing.T, f *fakeStream, r *recorder, batch int32) *eventsource.Poller {
	t.Helper()
	filter, err := changestream.ParseFilters(changestream.EventFilters...)
	if err != nil {
		t.Fatal(err)
	}
	return &eventsource.Poller{Streams: f, StreamArn: "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/x",
		Handler: lambda.NewHandler(r.handle), Filter: filter, BatchSize: batch, Interval: time.Millisecond, Backoff: time.Millisecond,
		Log: slog.New(&bufferHandler{})}
}

// bufferHandler keeps log lines for a test to read.
type bufferHandler struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (h *bufferHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *bufferHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *bufferHandler) WithGroup(string) slog.Handler            { return h }
func (h *bufferHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		h.buf.WriteString(" " + a.String())
		return true
	})
	h.buf.WriteString("\n")
	return nil
}

func (h *bufferHandler) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.buf.String()
}

func catchUp(t *testing.T, p *eventsource.Poller) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.CatchUp(ctx); err != nil {
		t.Fatalf("CatchUp() = %v", err)
	}
}

func TestPollerReadsParentShardFirstAndFilters(t *testing.T) {
	f := &fakeStream{}
	f.shard("child", "parent") // listed first, read second
	f.shard("parent", "")
	var want []string
	want = append(want, f.put("parent", "INSERT", "m-1", 1, "event"))
	f.put("parent", "INSERT", "m-1", 0, "snapshot")
	want = append(want, f.put("parent", "INSERT", "m-1", 2, "event"))
	f.put("parent", "MODIFY", "m-1", 0, "snapshot")
	f.put("parent", "MODIFY", "m-1", 2, "event")
	want = append(want, f.put("parent", "INSERT", "m-2", 1, "event"))
	f.close("parent")
	want = append(want, f.put("child", "INSERT", "m-1", 3, "event"))
	want = append(want, f.put("child", "INSERT", "m-2", 2, "event"))

	r := &recorder{}
	p := newPoller(t, f, r, 2)
	catchUp(t, p)
	if got := r.delivered(); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	first := r.records[0]
	if first.EventSource != "aws:dynamodb" || first.EventSourceArn != p.StreamArn || first.AWSRegion != "ddblocal" ||
		first.EventName != "INSERT" || first.EventVersion != "1.1" || first.EventID != "id-"+want[0] ||
		first.Change.SizeBytes != 42 || first.Change.StreamViewType != "NEW_IMAGE" ||
		first.Change.Keys["pk"].String() != "m#m-1" || first.Change.NewImage["v"].Number() != "1" {
		t.Errorf("first record = %+v", first)
	}

	// Later records, and only they, on the next catch-up.
	later := f.put("child", "INSERT", "m-1", 4, "event")
	catchUp(t, p)
	if got := r.delivered(); !slices.Equal(got, append(want, later)) {
		t.Errorf("after a later write: delivered %v, want %v", got, append(want, later))
	}
	if d := p.DeadLetters(); len(d) != 0 {
		t.Errorf("DeadLetters() = %v, want none", d)
	}
}

func TestPollerRetriesFromLowestFailure(t *testing.T) {
	f := &fakeStream{}
	f.shard("s", "")
	var seqs []string
	for v := 1; v <= 6; v++ {
		seqs = append(seqs, f.put("s", "INSERT", "m-1", v, "event"))
	}
	for _, c := range []struct {
		name   string
		answer func(call int, got []string) (events.DynamoDBEventResponse, error)
		retry  []string // the second invocation
	}{
		{"item failures, out of order", func(call int, _ []string) (events.DynamoDBEventResponse, error) {
			if call == 1 {
				return failures(seqs[4], seqs[2]), nil
			}
			return failures(), nil
		}, seqs[2:]},
		{"function error", func(call int, _ []string) (events.DynamoDBEventResponse, error) {
			if call == 1 {
				return events.DynamoDBEventResponse{}, errors.New("crash")
			}
			return failures(), nil
		}, seqs},
		{"failure not in the batch", func(call int, _ []string) (events.DynamoDBEventResponse, error) {
			if call == 1 {
				return failures(seqs[3], "999"), nil
			}
			return failures(), nil
		}, seqs},
		{"empty identifier", func(call int, _ []string) (events.DynamoDBEventResponse, error) {
			if call == 1 {
				return failures(""), nil
			}
			return failures(), nil
		}, seqs},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &recorder{answer: c.answer}
			catchUp(t, newPoller(t, f, r, 10))
			if len(r.calls) != 2 || !slices.Equal(r.calls[0], seqs) || !slices.Equal(r.calls[1], c.retry) {
				t.Errorf("invocations %v, want %v then %v", r.calls, seqs, c.retry)
			}
		})
	}
}

func TestPollerDeadLettersAfterRetries(t *testing.T) {
	f := &fakeStream{}
	f.shard("s", "")
	var seqs []string
	for v := 1; v <= 6; v++ {
		seqs = append(seqs, f.put("s", "INSERT", "m-1", v, "event"))
	}
	poison := seqs[3]
	r := &recorder{answer: func(_ int, got []string) (events.DynamoDBEventResponse, error) {
		if slices.Contains(got, poison) {
			return failures(poison), nil
		}
		return failures(), nil
	}}
	p := newPoller(t, f, r, 4)
	p.Retries = 2
	catchUp(t, p)
	// 1-4 fails at 4; 4-6 is retried twice and fails at 4; then 4-6 are given up.
	want := [][]string{seqs[:4], seqs[3:], seqs[3:]}
	if !slices.EqualFunc(r.calls, want, slices.Equal) {
		t.Errorf("invocations %v, want %v", r.calls, want)
	}
	dead := p.DeadLetters()
	if len(dead) != 1 || dead[0].ShardID != "s" || dead[0].Err == nil || len(dead[0].Records) != 3 || dead[0].Records[0].Change.SequenceNumber != poison {
		t.Fatalf("DeadLetters() = %+v, want records %v", dead, seqs[3:])
	}
	if log := p.Log.Handler().(*bufferHandler).String(); !strings.Contains(log, "dead-letter") || !strings.Contains(log, poison) {
		t.Errorf("log %q does not report the dead letter", log)
	}
	// The poller went on past them.
	next := f.put("s", "INSERT", "m-1", 7, "event")
	catchUp(t, p)
	if last := r.calls[len(r.calls)-1]; !slices.Equal(last, []string{next}) {
		t.Errorf("after the dead letter, delivered %v, want %v", last, next)
	}
}

func TestPollerRunStopsWithContext(t *testing.T) {
	f := &fakeStream{}
	f.shard("s", "")
	r := &recorder{}
	p := newPoller(t, f, r, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	seq := f.put("s", "INSERT", "m-1", 1, "event")
	for deadline := time.Now().Add(10 * time.Second); !slices.Equal(r.delivered(), []string{seq}); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Run delivered %v, want %v", r.delivered(), seq)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() = %v after cancel, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestPollerNeedsStreamAndHandler(t *testing.T) {
	for _, p := range []*eventsource.Poller{
		{StreamArn: "arn", Handler: lambda.NewHandler((&recorder{}).handle)},
		{Streams: &fakeStream{}, Handler: lambda.NewHandler((&recorder{}).handle)},
		{Streams: &fakeStream{}, StreamArn: "arn"},
	} {
		if err := p.Run(context.Background()); err == nil {
			t.Errorf("Run(%+v) = nil, want an error", p)
		}
	}
}
