package dynamo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/licensing"
)

// CounterShards is how many items each counter scope is spread over, so that
// a title downloaded by a great many members at once is written on several
// partitions; a reader sums them.
const CounterShards = 8

const kindCounter = "counter"

func counterKey(scope string, shard int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("c#%s#%d", scope, shard)},
		"sk": &types.AttributeValueMemberS{Value: "c"},
	}
}

// AddCounts applies the counter changes of one event in one transaction.
// token identifies the event (member and version): DynamoDB applies a
// transaction with a token it has seen in the last ten minutes only once,
// so a redelivered event is not counted twice. The stream function's
// maximum record age is kept under ten minutes for that reason.
func (s *Store) AddCounts(ctx context.Context, token string, deltas []licensing.CounterDelta) error {
	if len(deltas) == 0 {
		return nil
	}
	h := fnv.New32a()
	h.Write([]byte(token))
	shard := int(h.Sum32() % CounterShards)
	byScope := map[string][]licensing.CounterDelta{}
	var scopes []string
	for _, d := range deltas {
		if _, ok := byScope[d.Scope]; !ok {
			scopes = append(scopes, d.Scope)
		}
		byScope[d.Scope] = append(byScope[d.Scope], d)
	}
	sort.Strings(scopes)
	sum := sha256.Sum256([]byte(token))
	in := &dynamodb.TransactWriteItemsInput{
		ClientRequestToken:     aws.String(hex.EncodeToString(sum[:18])),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	}
	for _, scope := range scopes {
		names := map[string]string{"#it": "it"}
		values := map[string]types.AttributeValue{":it": &types.AttributeValueMemberS{Value: kindCounter}}
		expr := "SET #it = :it ADD "
		for i, d := range byScope[scope] {
			if i > 0 {
				expr += ", "
			}
			n, v := fmt.Sprintf("#f%d", i), fmt.Sprintf(":v%d", i)
			names[n] = d.Field
			values[v] = &types.AttributeValueMemberN{Value: strconv.FormatInt(d.Delta, 10)}
			expr += n + " " + v
		}
		in.TransactItems = append(in.TransactItems, types.TransactWriteItem{Update: &types.Update{
			TableName: &s.table, Key: counterKey(scope, shard), UpdateExpression: aws.String(expr),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		}})
	}
	out, err := s.db.TransactWriteItems(ctx, in)
	if err != nil {
		record(ctx, false)
		return fmt.Errorf("add counts for %s: %w", token, unavailable(err))
	}
	record(ctx, false, out.ConsumedCapacity...)
	return nil
}

// Counts reads a counter scope: its fields summed over the shards, with one
// BatchGetItem.
func (s *Store) Counts(ctx context.Context, scope string) (licensing.Counts, error) {
	keys := make([]map[string]types.AttributeValue, CounterShards)
	for i := range keys {
		keys[i] = counterKey(scope, i)
	}
	counts := licensing.Counts{}
	err := s.batchGet(ctx, keys, false, func(item map[string]types.AttributeValue) error {
		for name, v := range item {
			if n, ok := v.(*types.AttributeValueMemberN); ok && name != "pk" && name != "sk" && name != "it" {
				x, err := strconv.ParseInt(n.Value, 10, 64)
				if err != nil {
					return fmt.Errorf("counter %s.%s: %w", scope, name, err)
				}
				counts[name] += x
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read counts of %s: %w", scope, err)
	}
	return counts, nil
}

// batchGetAttempts bounds the BatchGetItem calls of one read: DynamoDB
// leaves keys unprocessed when it throttles.
const batchGetAttempts = 6

// batchGet reads keys (at most 100) with BatchGetItem and calls fn with each
// item found. Keys left unprocessed are asked for again after a backoff, a
// few times; then the read is Unavailable.
func (s *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue, consistent bool, fn func(map[string]types.AttributeValue) error) error {
	req := map[string]types.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(consistent)}}
	for attempt := 1; len(req) > 0; attempt++ {
		if attempt > batchGetAttempts {
			return &licensing.Error{Kind: licensing.KindUnavailable, Code: CodeStoreUnavailable,
				Message: "the store is busy; retry shortly", Cause: fmt.Errorf("%d keys unprocessed after %d reads", len(req[s.table].Keys), batchGetAttempts)}
		}
		if attempt > 1 {
			if err := licensing.Backoff(ctx, 10*time.Millisecond, attempt); err != nil {
				return err
			}
		}
		out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
		if err != nil {
			record(ctx, true)
			return unavailable(err)
		}
		record(ctx, true, out.ConsumedCapacity...)
		for _, item := range out.Responses[s.table] {
			if err := fn(item); err != nil {
				return err
			}
		}
		req = out.UnprocessedKeys
	}
	return nil
}

// ReplaceCounts sets a counter scope to counts, replacing whatever its
// shards held: for rebuilds, with the stream function paused. The totals go
// to shard 0; the other shards are deleted.
func (s *Store) ReplaceCounts(ctx context.Context, scope string, counts licensing.Counts) error {
	item := counterKey(scope, 0)
	item["it"] = &types.AttributeValueMemberS{Value: kindCounter}
	for f, v := range counts {
		if f == "pk" || f == "sk" || f == "it" {
			return fmt.Errorf("counter %s: field name %q is reserved", scope, f)
		}
		item[f] = &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
	}
	out, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
	if err != nil {
		return fmt.Errorf("replace counts of %s: %w", scope, err)
	}
	record(ctx, false, one(out.ConsumedCapacity)...)
	var deletes []types.WriteRequest
	for i := 1; i < CounterShards; i++ {
		deletes = append(deletes, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: counterKey(scope, i)}})
	}
	req := map[string][]types.WriteRequest{s.table: deletes}
	for len(req) > 0 {
		out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
		if err != nil {
			return fmt.Errorf("clear shards of %s: %w", scope, err)
		}
		record(ctx, false, out.ConsumedCapacity...)
		req = out.UnprocessedItems
	}
	return nil
}

// CounterScopes calls fn with every counter scope the table holds (a Scan:
// operators' tools only).
func (s *Store) CounterScopes(ctx context.Context, fn func(scope string) error) error {
	in := &dynamodb.ScanInput{
		TableName:                 &s.table,
		FilterExpression:          aws.String("it = :c"),
		ProjectionExpression:      aws.String("pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberS{Value: kindCounter}},
	}
	seen := map[string]bool{}
	for {
		out, err := s.db.Scan(ctx, in)
		if err != nil {
			return fmt.Errorf("scan counters: %w", err)
		}
		record(ctx, true, one(out.ConsumedCapacity)...)
		for _, it := range out.Items {
			pk, _ := it["pk"].(*types.AttributeValueMemberS)
			if pk == nil || !strings.HasPrefix(pk.Value, "c#") {
				continue
			}
			scope := strings.TrimPrefix(pk.Value[:strings.LastIndex(pk.Value, "#")], "c#")
			if !seen[scope] {
				seen[scope] = true
				if err := fn(scope); err != nil {
					return err
				}
			}
		}
		if out.LastEvaluatedKey == nil {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
