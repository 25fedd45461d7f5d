package changestream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/dlicense/dlicense/infra/projector"
)

// DeadLetterMessage is what Lambda sends to a DynamoDB event source
// mapping's on-failure destination for a batch it gave up on: where the
// records are (shard and sequence numbers), not the records, which stay in
// the stream for 24 hours.
type DeadLetterMessage struct {
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionArn            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	ResponseContext struct {
		StatusCode    int    `json:"statusCode"`
		FunctionError string `json:"functionError,omitempty"`
	} `json:"responseContext"`
	Version   string    `json:"version"`
	Timestamp time.Time `json:"timestamp"`
	Batch     BatchInfo `json:"DDBStreamBatchInfo"`
}

// BatchInfo locates a batch of a DynamoDB stream.
type BatchInfo struct {
	ShardID                         string    `json:"shardId"`
	StartSequenceNumber             string    `json:"startSequenceNumber"`
	EndSequenceNumber               string    `json:"endSequenceNumber"`
	ApproximateArrivalOfFirstRecord time.Time `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  time.Time `json:"approximateArrivalOfLastRecord"`
	BatchSize                       int       `json:"batchSize"`
	StreamArn                       string    `json:"streamArn"`
}

// ParseDeadLetter reads a dead-letter message.
func ParseDeadLetter(b []byte) (DeadLetterMessage, error) {
	var m DeadLetterMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("dead-letter message: %w", err)
	}
	bi := m.Batch
	if bi.ShardID == "" || bi.StreamArn == "" || bi.StartSequenceNumber == "" || bi.EndSequenceNumber == "" {
		return m, errors.New("dead-letter message: no DDBStreamBatchInfo with a shard, a stream and a sequence range")
	}
	if projector.CompareSeq(bi.StartSequenceNumber, bi.EndSequenceNumber) > 0 {
		return m, errors.New("dead-letter message: the sequence range ends before it starts")
	}
	return m, nil
}

// RecordReader is the part of the DynamoDB Streams client that reads a
// shard's records.
type RecordReader interface {
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// Delivery defaults, Lambda's for a DynamoDB event source mapping as the
// template sets it up.
const (
	DefaultBatchSize = 100
	DefaultRetries   = 5
	DefaultBackoff   = 200 * time.Millisecond
	// MaxBatchSize is GetRecords' limit.
	MaxBatchSize = 1000
)

// Redriver replays the records of dead-letter messages through the stream
// function, as Lambda would have delivered them: read from the stream
// (they stay there 24 hours), filtered, in batches, a failed batch retried
// from its failed record a few times.
type Redriver struct {
	Streams RecordReader
	// Handler is the stream function as Lambda runs it.
	Handler lambda.Handler
	Filter  Filter
	// BatchSize, Retries and Backoff are as the poller's (its defaults if 0).
	BatchSize int32
	Retries   int
	Backoff   time.Duration
}

// RedriveReport says what a redrive did.
type RedriveReport struct {
	// Read is how many records of the range were read; Delivered how many
	// passed the filter and were handled.
	Read, Delivered int
}

// Redrive replays the records of one message's range. progress, if set, is
// called with the records handled so far and the batch size the message
// announced. It fails if the records are gone from the stream or keep
// failing; what was handled before stays handled (the stream function is
// idempotent), so a redrive can simply be run again.
func (r *Redriver) Redrive(ctx context.Context, m DeadLetterMessage, progress func(done, total int)) (RedriveReport, error) {
	var rep RedriveReport
	bi := m.Batch
	it, err := r.Streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(bi.StreamArn), ShardId: aws.String(bi.ShardID),
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(bi.StartSequenceNumber),
	})
	if err != nil {
		return rep, fmt.Errorf("shard %s at %s: %w", bi.ShardID, bi.StartSequenceNumber, err)
	}
	iter := it.ShardIterator
	empty := 0
	for iter != nil {
		out, err := r.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(r.batchSize())})
		if err != nil {
			return rep, fmt.Errorf("read shard %s: %w", bi.ShardID, err)
		}
		var batch []events.DynamoDBEventRecord
		past := false
		for _, rec := range out.Records {
			seq := aws.ToString(rec.Dynamodb.SequenceNumber)
			if projector.CompareSeq(seq, bi.EndSequenceNumber) > 0 {
				past = true
				break
			}
			rep.Read++
			er, err := EventRecord(rec, bi.StreamArn)
			if err != nil {
				return rep, fmt.Errorf("record %s: %w", seq, err)
			}
			if r.Filter.Match(er) {
				batch = append(batch, er)
			}
		}
		if err := r.deliver(ctx, batch); err != nil {
			return rep, err
		}
		rep.Delivered += len(batch)
		if progress != nil {
			progress(rep.Read, bi.BatchSize)
		}
		if past || (rep.Read > 0 && len(out.Records) > 0 && projector.CompareSeq(aws.ToString(out.Records[len(out.Records)-1].Dynamodb.SequenceNumber), bi.EndSequenceNumber) == 0) {
			return rep, nil
		}
		if len(out.Records) == 0 {
			// An open shard answers empty at its end; a few in a row mean
			// the range's records are not coming.
			if empty++; empty > 5 {
				break
			}
		} else {
			empty = 0
		}
		iter = out.NextShardIterator
	}
	if rep.Read < bi.BatchSize {
		return rep, fmt.Errorf("shard %s: read %d of the %d records to %s: the rest are gone from the stream", bi.ShardID, rep.Read, bi.BatchSize, bi.EndSequenceNumber)
	}
	return rep, nil
}

// deliver hands a batch to the function, retrying from the failed record.
func (r *Redriver) deliver(ctx context.Context, recs []events.DynamoDBEventRecord) error {
	retries := r.Retries
	if retries == 0 {
		retries = DefaultRetries
	}
	backoff := r.Backoff
	if backoff == 0 {
		backoff = DefaultBackoff
	}
	for attempt := 0; len(recs) > 0; attempt++ {
		failed, err := Invoke(ctx, r.Handler, recs)
		if err == nil {
			return nil
		}
		recs = recs[failed:]
		if attempt >= retries {
			return fmt.Errorf("the stream function still fails from record %s: %w", recs[0].Change.SequenceNumber, err)
		}
		select {
		case <-time.After(backoff << attempt):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (r *Redriver) batchSize() int32 {
	if r.BatchSize > 0 && r.BatchSize <= MaxBatchSize {
		return r.BatchSize
	}
	return DefaultBatchSize
}
