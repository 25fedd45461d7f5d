package dynamo

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/kernel"
)

// throttling answers batch calls leaving the first request unprocessed
// the first leave calls.
type throttling struct {
	API
	leave, calls int
	written      int
}

func (d *throttling) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	d.calls++
	reqs := in.RequestItems["t"]
	if d.calls <= d.leave {
		d.written += len(reqs) - 1
		return &dynamodb.BatchWriteItemOutput{UnprocessedItems: map[string][]types.WriteRequest{"t": reqs[:1]}}, nil
	}
	d.written += len(reqs)
	return &dynamodb.BatchWriteItemOutput{}, nil
}

func (d *throttling) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	d.calls++
	keys := in.RequestItems["t"].Keys
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
	if d.calls <= d.leave {
		out.Responses["t"] = keys[1:]
		out.UnprocessedKeys = map[string]types.KeysAndAttributes{"t": {Keys: keys[:1]}}
		return out, nil
	}
	out.Responses["t"] = keys
	return out, nil
}

// TestBatchesRetryWhatIsLeftUnprocessed: a throttled batch is made again
// for what DynamoDB left, a few times; past that it is Unavailable.
func TestBatchesRetryWhatIsLeftUnprocessed(t *testing.T) {
	ctx := context.Background()
	keys := make([]map[string]types.AttributeValue, 30)
	for i := range keys {
		keys[i] = key("p", string(rune('a'+i)))
	}
	db := &throttling{leave: 2}
	if err := NewTable(db, "t").batchWrite(ctx, deletes(keys)); err != nil || db.written != 30 || db.calls != 4 {
		t.Errorf("batchWrite(30, throttled twice) = %v: %d written in %d calls, want 30 in 4 (25, again, again, 5)", err, db.written, db.calls)
	}
	db = &throttling{leave: 3}
	read := 0
	if err := NewTable(db, "t").batchGet(ctx, keys[:10], false, func(map[string]types.AttributeValue) error { read++; return nil }); err != nil || read != 10 || db.calls != 4 {
		t.Errorf("batchGet(10, throttled thrice) = %v: %d read in %d calls, want 10 in 4", err, read, db.calls)
	}
	db = &throttling{leave: 1 << 30}
	err := NewTable(db, "t").batchWrite(ctx, deletes(keys[:3]))
	var ke *kernel.Error
	if !errors.As(err, &ke) || ke.Code != kernel.CodeStoreUnavailable || db.calls != batchAttempts {
		t.Errorf("batchWrite(always throttled) = %v after %d calls, want STORE_UNAVAILABLE after %d", err, db.calls, batchAttempts)
	}
}
