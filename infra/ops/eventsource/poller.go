package eventsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/dlicense/dlicense/infra/changestream"
)

// StreamsAPI is the part of the DynamoDB Streams client the poller uses.
type StreamsAPI interface {
	changestream.RecordReader
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
}

// Poller defaults: Lambda's (changestream's), and how often it polls.
const (
	DefaultBatchSize = changestream.DefaultBatchSize
	DefaultInterval  = 250 * time.Millisecond
	DefaultRetries   = changestream.DefaultRetries
	DefaultBackoff   = changestream.DefaultBackoff

	maxBackoff   = 10 * time.Second
	shardRefresh = 10 * time.Second
)

// Poller runs the stream function on a table's stream outside Lambda (over
// DynamoDB Local, for local runs and tests) the way Lambda's event source
// mapping does: every shard from its oldest record, a child shard only once
// its parent is read to its end, records filtered and batched into the
// events.DynamoDBEvent Lambda would send, invoked through the Lambda JSON
// path, and batch item failures retried from the lowest failed sequence
// number, a bounded number of times.
//
// Run and CatchUp take turns: one pass over the shards at a time.
type Poller struct {
	// Streams reads the stream.
	Streams StreamsAPI
	// StreamArn is the table's stream (DescribeTable's LatestStreamArn).
	StreamArn string
	// Handler is the stream function as Lambda runs it, for example
	// lambda.NewHandler(processor.Handle). The poller never invokes it
	// concurrently.
	Handler lambda.Handler
	// Filter keeps the records the function is given; the zero Filter
	// keeps all. Records it drops count as handled.
	Filter changestream.Filter
	// BatchSize is the most records read and delivered at once
	// (DefaultBatchSize if 0, at most 1000).
	BatchSize int32
	// Interval is the pause between passes that found nothing new
	// (DefaultInterval if 0).
	Interval time.Duration
	// Retries is how many times delivery is retried from the same failed
	// record before the rest of its batch goes to the dead letters
	// (DefaultRetries if 0; negative for none). A failure further on
	// starts the count again.
	Retries int
	// Backoff is the pause before the first retry, doubled for each next
	// one (DefaultBackoff if 0).
	Backoff time.Duration
	// Log receives failures and dead letters (slog.Default() if nil).
	Log *slog.Logger
	// StartAtLatest starts the shards found first at their newest record, as
	// an event source mapping with StartingPosition LATEST does (shards
	// that appear later start at their oldest). By default they start at
	// their oldest (TRIM_HORIZON).
	StartAtLatest bool
	// DeadLetterDir, when set, is where each dead letter is also written as
	// the message Lambda would send to the on-failure destination, for
	// dlicense-redrive.
	DeadLetterDir string

	mu        sync.Mutex // one pass at a time
	shards    map[string]*shard
	order     []string // shard ids in the order they were found
	refreshed time.Time
	stale     bool // a shard ended: read the shard list again

	deadMu sync.Mutex
	dead   []DeadLetter
}

// DeadLetter is a batch the stream function kept failing on: what Lambda
// would send to the mapping's on-failure destination, records included.
type DeadLetter struct {
	ShardID string
	// Records are those given up on, from the failed record with the lowest
	// sequence number to the end of the batch.
	Records []events.DynamoDBEventRecord
	// Err says why the last delivery failed.
	Err error
}

// shard is the poller's position in one shard.
type shard struct {
	id, parent string
	// iter is the iterator to read next; empty when one must be got at pos.
	iter string
	pos  position
	done bool // ended, and read to its end
	// failedAt is the record deliveries failed at, failures how many times
	// in a row, and retryAt when to deliver again.
	failedAt string
	failures int
	retryAt  time.Time
}

// position is where a new iterator starts.
type position struct {
	kind types.ShardIteratorType
	seq  string
}

// pass is what one pass over the shards did.
type pass struct {
	records int       // records read
	changed bool      // shards appeared or ended
	retryAt time.Time // the earliest retry waiting, if any
}

// Run polls the stream until ctx is done, then returns nil. Errors reading
// the stream are logged and the pass is tried again; only a poller without
// a stream, client or handler is an error.
func (p *Poller) Run(ctx context.Context) error {
	if err := p.check(); err != nil {
		return err
	}
	errorsInARow := 0
	for {
		p.mu.Lock()
		ps, err := p.poll(ctx, false)
		p.mu.Unlock()
		if ctx.Err() != nil {
			return nil
		}
		wait := p.interval()
		if err != nil {
			// The stream is unreachable (DynamoDB Local stopped?): say so,
			// less and less often.
			errorsInARow++
			wait = min(wait<<min(errorsInARow-1, 6), maxBackoff)
			p.log().WarnContext(ctx, "stream poll failed", "stream", p.StreamArn, "error", err, "retry_in", wait)
		} else {
			errorsInARow = 0
			if ps.records > 0 || ps.changed {
				wait = 0 // a backlog or new shards: go on at once
			}
		}
		if !ps.retryAt.IsZero() {
			wait = min(wait, time.Until(ps.retryAt))
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// CatchUp polls until a pass over every shard finds no new records and no
// retry is waiting, then returns; it returns the first error reading the
// stream. Tests use it after writing, instead of waiting for Run.
func (p *Poller) CatchUp(ctx context.Context) error {
	if err := p.check(); err != nil {
		return err
	}
	for {
		p.mu.Lock()
		ps, err := p.poll(ctx, true)
		p.mu.Unlock()
		if err != nil {
			return err
		}
		if ps.records > 0 || ps.changed {
			continue
		}
		if ps.retryAt.IsZero() {
			return nil
		}
		if !sleep(ctx, time.Until(ps.retryAt)) {
			return ctx.Err()
		}
	}
}

// DeadLetters returns the batches given up on so far, oldest first.
func (p *Poller) DeadLetters() []DeadLetter {
	p.deadMu.Lock()
	defer p.deadMu.Unlock()
	return append([]DeadLetter(nil), p.dead...)
}

func (p *Poller) check() error {
	switch {
	case p.Streams == nil:
		return errors.New("poller: no streams client")
	case p.StreamArn == "":
		return errors.New("poller: no stream ARN (is the table's stream enabled?)")
	case p.Handler == nil:
		return errors.New("poller: no handler")
	}
	return nil
}

// poll makes one pass: it reads the shard list when due (or when refresh
// is set), then one batch from every shard that is ready.
func (p *Poller) poll(ctx context.Context, refresh bool) (pass, error) {
	var ps pass
	if refresh || p.stale || time.Since(p.refreshed) >= shardRefresh {
		added, err := p.refresh(ctx)
		if err != nil {
			return ps, err
		}
		ps.changed = added > 0
	}
	var errs []error
	now := time.Now()
	for _, id := range p.order {
		s := p.shards[id]
		if s.done || !p.ready(s) {
			continue
		}
		if now.Before(s.retryAt) {
			ps.retryAt = earliest(ps.retryAt, s.retryAt)
			continue
		}
		n, err := p.read(ctx, s)
		ps.records += n
		if err != nil {
			errs = append(errs, err)
		}
		if s.done {
			ps.changed, p.stale = true, true
		}
		if !s.retryAt.IsZero() {
			ps.retryAt = earliest(ps.retryAt, s.retryAt)
		}
	}
	return ps, errors.Join(errs...)
}

// ready reports whether a shard may be read: records of a key are in
// order only if a child waits for its parent to be read to its end. A
// parent the stream no longer lists has been trimmed away.
func (p *Poller) ready(s *shard) bool {
	parent := p.shards[s.parent]
	return parent == nil || parent.done
}

// refresh reads the shard list and starts every new shard at its oldest
// record. It returns how many shards are new.
func (p *Poller) refresh(ctx context.Context) (int, error) {
	start := types.ShardIteratorTypeTrimHorizon
	if p.shards == nil {
		p.shards = map[string]*shard{}
		if p.StartAtLatest {
			start = types.ShardIteratorTypeLatest
		}
	}
	added := 0
	in := &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(p.StreamArn)}
	for {
		out, err := p.Streams.DescribeStream(ctx, in)
		if err != nil {
			return added, fmt.Errorf("describe stream %s: %w", p.StreamArn, err)
		}
		if out.StreamDescription == nil {
			break
		}
		for _, sh := range out.StreamDescription.Shards {
			id := aws.ToString(sh.ShardId)
			if id == "" || p.shards[id] != nil {
				continue
			}
			p.shards[id] = &shard{id: id, parent: aws.ToString(sh.ParentShardId), pos: position{kind: start}}
			p.order = append(p.order, id)
			added++
		}
		if out.StreamDescription.LastEvaluatedShardId == nil {
			break
		}
		in.ExclusiveStartShardId = out.StreamDescription.LastEvaluatedShardId
	}
	p.refreshed, p.stale = time.Now(), false
	return added, nil
}

// read reads and delivers one batch of a shard, returning how many records
// it read.
func (p *Poller) read(ctx context.Context, s *shard) (int, error) {
	n, err := p.readOnce(ctx, s)
	var trimmed *types.TrimmedDataAccessException
	if errors.As(err, &trimmed) && s.pos.seq == "" {
		// DynamoDB Local refuses an iterator taken while the shard had no
		// record once records came; nothing was handled from this shard
		// yet, so one from its oldest record reads them.
		n, err = p.readOnce(ctx, s)
	}
	return n, err
}

func (p *Poller) readOnce(ctx context.Context, s *shard) (int, error) {
	s.retryAt = time.Time{}
	if s.iter == "" {
		in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(p.StreamArn), ShardId: aws.String(s.id), ShardIteratorType: s.pos.kind}
		if s.pos.seq != "" {
			in.SequenceNumber = aws.String(s.pos.seq)
		}
		out, err := p.Streams.GetShardIterator(ctx, in)
		if err != nil {
			var trimmed *types.TrimmedDataAccessException
			if errors.As(err, &trimmed) {
				// The records were trimmed before they were handled: they
				// are lost; go on from the oldest left.
				p.log().ErrorContext(ctx, "stream records trimmed before they were handled", "shard", s.id, "sequence", s.pos.seq)
				s.pos = position{kind: types.ShardIteratorTypeTrimHorizon}
			}
			return 0, fmt.Errorf("shard %s: iterator %s %s: %w", s.id, s.pos.kind, s.pos.seq, err)
		}
		if out.ShardIterator == nil {
			s.done = true
			return 0, nil
		}
		s.iter = *out.ShardIterator
	}
	out, err := p.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(s.iter), Limit: aws.Int32(p.batchSize())})
	if err != nil {
		s.iter = "" // expired or refused: start again from s.pos
		return 0, fmt.Errorf("stream %s shard %s (at %s %s): get records: %w", p.StreamArn, s.id, s.pos.kind, s.pos.seq, err)
	}
	if len(out.Records) == 0 {
		s.advance(out.NextShardIterator)
		return 0, nil
	}
	p.deliver(ctx, s, out.Records, out.NextShardIterator)
	return len(out.Records), nil
}

// advance moves to the next iterator; none means the shard ended and has
// been read to its end.
func (s *shard) advance(next *string) {
	if next == nil {
		s.iter, s.done = "", true
		return
	}
	s.iter = *next
}

// deliver filters a batch, invokes the function and moves the shard on,
// to a retry, or past records given up on.
func (p *Poller) deliver(ctx context.Context, s *shard, recs []types.Record, next *string) {
	batch := make([]events.DynamoDBEventRecord, 0, len(recs))
	for _, r := range recs {
		er, err := changestream.EventRecord(r, p.StreamArn)
		if err != nil {
			// No retry makes such a record readable.
			p.bury(ctx, s.id, []events.DynamoDBEventRecord{er}, err)
			continue
		}
		if p.Filter.Match(er) {
			batch = append(batch, er)
		}
	}
	last := s.pos
	if r := recs[len(recs)-1]; r.Dynamodb != nil && r.Dynamodb.SequenceNumber != nil {
		last = position{kind: types.ShardIteratorTypeAfterSequenceNumber, seq: *r.Dynamodb.SequenceNumber}
	}
	failed, err := changestream.Invoke(ctx, p.Handler, batch)
	if err == nil {
		s.pos, s.failedAt, s.failures = last, "", 0
		s.advance(next)
		return
	}
	at := batch[failed].Change.SequenceNumber
	if at == s.failedAt {
		s.failures++
	} else {
		s.failedAt, s.failures = at, 1
	}
	if s.failures <= p.retries() {
		delay := p.backoff(s.failures)
		p.log().WarnContext(ctx, "stream function failed; retrying", "shard", s.id, "sequence", at, "attempt", s.failures, "in", delay, "error", err)
		s.pos = position{kind: types.ShardIteratorTypeAtSequenceNumber, seq: at}
		s.iter, s.retryAt = "", time.Now().Add(delay)
		return
	}
	p.bury(ctx, s.id, batch[failed:], err)
	s.pos, s.failedAt, s.failures = last, "", 0
	s.advance(next)
}

// bury gives records up: logged, and kept on the dead-letter list.
func (p *Poller) bury(ctx context.Context, shardID string, recs []events.DynamoDBEventRecord, err error) {
	first, last := recs[0].Change.SequenceNumber, recs[len(recs)-1].Change.SequenceNumber
	d := DeadLetter{ShardID: shardID, Records: recs, Err: err}
	path := ""
	if p.DeadLetterDir != "" {
		var werr error
		if path, werr = writeDeadLetter(p.DeadLetterDir, d.Message(p.StreamArn, time.Now())); werr != nil {
			p.log().ErrorContext(ctx, "dead letter not written", "dir", p.DeadLetterDir, "error", werr)
		}
	}
	p.log().ErrorContext(ctx, "stream records sent to the dead-letter list", "shard", shardID, "first", first, "last", last, "records", len(recs), "message", path, "error", err)
	p.deadMu.Lock()
	defer p.deadMu.Unlock()
	p.dead = append(p.dead, d)
}

func (p *Poller) batchSize() int32 {
	switch {
	case p.BatchSize <= 0:
		return DefaultBatchSize
	case p.BatchSize > changestream.MaxBatchSize:
		return changestream.MaxBatchSize
	}
	return p.BatchSize
}

func (p *Poller) interval() time.Duration {
	if p.Interval > 0 {
		return p.Interval
	}
	return DefaultInterval
}

func (p *Poller) retries() int {
	switch {
	case p.Retries == 0:
		return DefaultRetries
	case p.Retries < 0:
		return 0
	}
	return p.Retries
}

// backoff is the pause before retry n (1 for the first).
func (p *Poller) backoff(n int) time.Duration {
	d := p.Backoff
	if d <= 0 {
		d = DefaultBackoff
	}
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

func (p *Poller) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// sleep waits d or until ctx is done, reporting whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
