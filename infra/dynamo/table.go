package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/kernel"
)

// API is the part of the DynamoDB client the stores use.
type API interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// Table is one DynamoDB table and the calls every store makes on it: each
// metered (Meter) and each failure that may pass turned into the kernel's
// Unavailable. A store holds the table its items live in and assumes
// nothing of where another store's items are.
type Table struct {
	db   API
	name string
}

// NewTable returns the table called name, reached through db.
func NewTable(db API, name string) *Table { return &Table{db: db, name: name} }

// Limits of DynamoDB's batch and transaction calls.
const (
	// maxTransactItems is the most items one transaction writes.
	maxTransactItems = 100
	// maxBatchWrite is the most requests one BatchWriteItem carries, and
	// maxBatchGet the most keys one BatchGetItem reads.
	maxBatchWrite = 25
	maxBatchGet   = 100
	// batchAttempts bounds the calls of one batch (untilProcessed).
	batchAttempts = 6
	// transactAttempts bounds the transactions tried for one set of
	// changes: each lost race on an item (TransactionConflict) tries again.
	transactAttempts = 8
	// batchBackoff is the base wait before a batch or transaction is tried
	// again.
	batchBackoff = 10 * time.Millisecond
)

// get reads one item (empty if there is none).
func (t *Table) get(ctx context.Context, k map[string]types.AttributeValue, consistent bool) (map[string]types.AttributeValue, error) {
	out, err := t.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &t.name, Key: k, ConsistentRead: aws.Bool(consistent),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		record(ctx, true)
		return nil, unavailable(err)
	}
	record(ctx, true, one(out.ConsumedCapacity)...)
	return out.Item, nil
}

// put writes one item, on cond if it is not empty. A failed condition is
// the SDK's ConditionalCheckFailedException, with the item as it was when
// old is set.
func (t *Table) put(ctx context.Context, item map[string]types.AttributeValue, cond string, names map[string]string, values map[string]types.AttributeValue, old bool) error {
	in := &dynamodb.PutItemInput{TableName: &t.name, Item: item, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal}
	if cond != "" {
		in.ConditionExpression = aws.String(cond)
	}
	if len(names) > 0 {
		in.ExpressionAttributeNames = names
	}
	if len(values) > 0 {
		in.ExpressionAttributeValues = values
	}
	if old {
		in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	}
	out, err := t.db.PutItem(ctx, in)
	if err != nil {
		recordError(ctx, err, item)
		return err
	}
	record(ctx, false, one(out.ConsumedCapacity)...)
	return nil
}

// failedCondition reports whether err is a failed condition, and the item
// DynamoDB sent back with it.
func failedCondition(err error) (map[string]types.AttributeValue, bool) {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf.Item, true
	}
	return nil, false
}

// update makes one conditional UpdateItem, every attribute named through a
// placeholder. When the condition fails it returns the item as it was
// (empty if there was none): DynamoDB sends it back, without another read.
// With returnOld, a write returns the item as it was before it too.
func (t *Table) update(ctx context.Context, k map[string]types.AttributeValue, update, cond string, values map[string]types.AttributeValue, returnOld bool) (old map[string]types.AttributeValue, applied bool, err error) {
	in := &dynamodb.UpdateItemInput{
		TableName: &t.name, Key: k,
		UpdateExpression: aws.String(update), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names(update + " " + cond), ExpressionAttributeValues: values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
	}
	if returnOld {
		in.ReturnValues = types.ReturnValueAllOld
	}
	out, err := t.db.UpdateItem(ctx, in)
	if err == nil {
		record(ctx, false, one(out.ConsumedCapacity)...)
		return out.Attributes, true, nil
	}
	recordError(ctx, err, nil)
	item, failed := failedCondition(err)
	if !failed {
		return nil, false, unavailable(err)
	}
	return item, false, nil
}

// query calls fn with every item a Query finds, page after page.
func (t *Table) query(ctx context.Context, in *dynamodb.QueryInput, fn func(map[string]types.AttributeValue) error) error {
	in.TableName = &t.name
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	for {
		out, err := t.db.Query(ctx, in)
		if err != nil {
			record(ctx, true)
			return unavailable(err)
		}
		record(ctx, true, one(out.ConsumedCapacity)...)
		for _, item := range out.Items {
			if err := fn(item); err != nil {
				return err
			}
		}
		if out.LastEvaluatedKey == nil {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// queryPrefix calls fn with every item of partition pk whose sort key
// begins with one of prefixes, read strongly consistent.
func (t *Table) queryPrefix(ctx context.Context, pk string, prefixes []string, fn func(map[string]types.AttributeValue)) error {
	for _, prefix := range prefixes {
		err := t.query(ctx, &dynamodb.QueryInput{
			KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :p)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk), ":p": str(prefix)},
			ConsistentRead:            aws.Bool(true),
		}, func(item map[string]types.AttributeValue) error {
			fn(item)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// scan calls fn with every item a Scan finds, page after page (operators'
// tools only: a Scan reads the whole table).
func (t *Table) scan(ctx context.Context, in *dynamodb.ScanInput, fn func(map[string]types.AttributeValue) error) error {
	in.TableName = &t.name
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	for {
		out, err := t.db.Scan(ctx, in)
		if err != nil {
			record(ctx, true)
			return fmt.Errorf("scan %s: %w", t.name, unavailable(err))
		}
		record(ctx, true, one(out.ConsumedCapacity)...)
		for _, item := range out.Items {
			if err := fn(item); err != nil {
				return err
			}
		}
		if out.LastEvaluatedKey == nil {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// batchGet reads keys with BatchGetItem, 100 at a time, and calls fn with
// each item found.
func (t *Table) batchGet(ctx context.Context, keys []map[string]types.AttributeValue, consistent bool, fn func(map[string]types.AttributeValue) error) error {
	for len(keys) > 0 {
		n := min(len(keys), maxBatchGet)
		req := map[string]types.KeysAndAttributes{t.name: {Keys: keys[:n], ConsistentRead: aws.Bool(consistent)}}
		err := untilProcessed(ctx, "keys", func() (int, error) {
			out, err := t.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
			if err != nil {
				record(ctx, true)
				return 0, unavailable(err)
			}
			record(ctx, true, out.ConsumedCapacity...)
			for _, item := range out.Responses[t.name] {
				if err := fn(item); err != nil {
					return 0, err
				}
			}
			req = out.UnprocessedKeys
			return len(req[t.name].Keys), nil
		})
		if err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// tableKeys are keys of one table.
type tableKeys struct {
	t    *Table
	keys []map[string]types.AttributeValue
}

// batchGetAcross reads keys of one or several tables (of one client) with
// BatchGetItem: one request while they are at most 100 (more only for keys
// DynamoDB leaves unprocessed), else a table at a time.
func batchGetAcross(ctx context.Context, db API, consistent bool, reads []tableKeys, fn func(map[string]types.AttributeValue) error) error {
	req := map[string]types.KeysAndAttributes{}
	total := 0
	for _, r := range reads {
		ka := req[r.t.name]
		ka.Keys, ka.ConsistentRead = append(ka.Keys, r.keys...), aws.Bool(consistent)
		req[r.t.name] = ka
		total += len(r.keys)
	}
	if total > maxBatchGet {
		for _, r := range reads {
			if err := r.t.batchGet(ctx, r.keys, consistent, fn); err != nil {
				return err
			}
		}
		return nil
	}
	return untilProcessed(ctx, "keys", func() (int, error) {
		out, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
		if err != nil {
			record(ctx, true)
			return 0, unavailable(err)
		}
		record(ctx, true, out.ConsumedCapacity...)
		for _, items := range out.Responses {
			for _, item := range items {
				if err := fn(item); err != nil {
					return 0, err
				}
			}
		}
		req = out.UnprocessedKeys
		left := 0
		for _, ka := range req {
			left += len(ka.Keys)
		}
		return left, nil
	})
}

// batchWrite makes writes (puts and deletes, none conditional) with
// BatchWriteItem, 25 at a time.
func (t *Table) batchWrite(ctx context.Context, writes []types.WriteRequest) error {
	for len(writes) > 0 {
		n := min(len(writes), maxBatchWrite)
		pending := map[string][]types.WriteRequest{t.name: writes[:n]}
		err := untilProcessed(ctx, "writes", func() (int, error) {
			out, err := t.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
			if err != nil {
				record(ctx, false)
				return 0, unavailable(err)
			}
			record(ctx, false, out.ConsumedCapacity...)
			pending = out.UnprocessedItems
			return len(pending[t.name]), nil
		})
		if err != nil {
			return err
		}
		writes = writes[n:]
	}
	return nil
}

// untilProcessed makes a batch call until it leaves nothing unprocessed
// (DynamoDB leaves requests unprocessed when it throttles): call says how
// many it left, which are made again after a back-off, up to batchAttempts
// calls; then the batch is Unavailable.
func untilProcessed(ctx context.Context, what string, call func() (left int, err error)) error {
	for attempt := 1; ; attempt++ {
		left, err := call()
		if err != nil || left == 0 {
			return err
		}
		if attempt == batchAttempts {
			return kernel.Unavailable("the store is busy; retry shortly", fmt.Errorf("%d %s unprocessed after %d calls", left, what, batchAttempts))
		}
		if err := kernel.Backoff(ctx, batchBackoff, attempt+1); err != nil {
			return err
		}
	}
}

// deletes are the delete requests of keys.
func deletes(keys []map[string]types.AttributeValue) []types.WriteRequest {
	out := make([]types.WriteRequest, len(keys))
	for i, k := range keys {
		out[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k}}
	}
	return out
}

// transactUntilDone writes the transaction build makes (its first n items
// conditional, one per change) until it is written or nothing is left: a
// cancellation calls failed for each change whose condition failed (with
// the item DynamoDB returns), then trim, which drops what is done and says
// how many changes are left, and the rest is tried again; a conflict with
// another transaction, or a transient error, is retried with backoff, up to
// transactAttempts tries.
func (t *Table) transactUntilDone(ctx context.Context, what string, build func() (*dynamodb.TransactWriteItemsInput, int, error),
	failed func(i int, item map[string]types.AttributeValue), trim func() int) error {
	left := 1
	for attempt := 1; left > 0; attempt++ {
		in, n, err := build()
		if err != nil {
			return err
		}
		out, err := t.db.TransactWriteItems(ctx, in)
		if err == nil {
			record(ctx, false, out.ConsumedCapacity...)
			return nil
		}
		recordError(ctx, err, nil)
		var tce *types.TransactionCanceledException
		conflict := false
		if errors.As(err, &tce) {
			trimmed := false
			for i, r := range tce.CancellationReasons {
				switch aws.ToString(r.Code) {
				case "ConditionalCheckFailed":
					if i < n {
						failed(i, r.Item)
						trimmed = true
					}
				case "TransactionConflict":
					conflict = true
				}
			}
			if trimmed {
				left = trim()
				continue
			}
		}
		if (!conflict && !transient(err)) || attempt >= transactAttempts {
			return fmt.Errorf("%s (%d in the transaction): %w", what, n, unavailable(err))
		}
		if err := kernel.Backoff(ctx, batchBackoff, attempt); err != nil {
			return err
		}
	}
	return nil
}

// key is the primary key of an item.
func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str(pk), "sk": str(sk)}
}

// keyOf is the primary key of item.
func keyOf(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": item["pk"], "sk": item["sk"]}
}

// names maps every #name placeholder of the expressions to the attribute
// name it stands for: every attribute is named through a placeholder, so
// none can clash with DynamoDB's reserved words.
func names(expr string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(expr); i++ {
		if expr[i] != '#' {
			continue
		}
		j := i + 1
		for j < len(expr) && (expr[j] >= 'a' && expr[j] <= 'z' || expr[j] >= '0' && expr[j] <= '9') {
			j++
		}
		out[expr[i:j]] = expr[i+1 : j]
		i = j - 1
	}
	return out
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// strOf and numOf read a string or number attribute of item ("" and 0, ok
// false, if it has none).
func strOf(item map[string]types.AttributeValue, name string) (string, bool) {
	s, ok := item[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return s.Value, true
}

func numOf(item map[string]types.AttributeValue, name string) (int64, bool) {
	n, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	return v, err == nil
}

// ms is a time as stored: Unix milliseconds, 0 for the zero time, so that
// conditions compare times as numbers.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMs(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}
