package dynamo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/kernel"
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

// countedSK is the sort key, in a member's partition, of the item that
// remembers the last version of the member counted (its "cv"). It does not
// start with "e#", so loads never read it.
const (
	countedSK   = "c#counted"
	kindCounted = "counted"
)

// maxTransactItems is DynamoDB's limit on the items of one transaction.
const maxTransactItems = 100

// countAttempts bounds the transactions tried for one chunk of members:
// each lost race on a counter item (TransactionConflict) tries again.
const countAttempts = 8

// AddCounts implements licensing.CounterStore. Members are counted in
// transactions of up to 100 items: each member's "counted" item, moved to
// its last version on the condition that it was below its first, and one
// update per counter scope with the changes of every member of the
// transaction summed (a scope's shard picked by the transaction). A member
// counted already, in part or whole (a redelivered record, a retried write
// whose answer was lost, at any age), fails its condition: the transaction
// is cancelled and DynamoDB sends back the version it holds; its counted
// changes are dropped and the rest is tried again. Nothing rests on
// DynamoDB's ten-minute memory of transaction tokens.
func (s *Store) AddCounts(ctx context.Context, counted []licensing.Counted) ([]string, error) {
	var pending []licensing.Counted
	for _, c := range counted {
		if len(c.Changes) > 0 {
			pending = append(pending, c)
		}
	}
	var failed []string
	var firstErr error
	for len(pending) > 0 {
		n := chunkOf(pending)
		if err := s.countChunk(ctx, slices.Clone(pending[:n])); err != nil {
			for _, c := range pending[:n] {
				failed = append(failed, c.Member)
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		pending = pending[n:]
	}
	return failed, firstErr
}

// chunkOf is how many of the first members fit one transaction: their
// counted items and the scopes they change.
func chunkOf(counted []licensing.Counted) int {
	scopes := map[string]bool{}
	for i, c := range counted {
		for _, ch := range c.Changes {
			for _, d := range ch.Deltas {
				scopes[d.Scope] = true
			}
		}
		if i > 0 && i+1+len(scopes) > maxTransactItems {
			return i
		}
	}
	return len(counted)
}

func (s *Store) countChunk(ctx context.Context, chunk []licensing.Counted) error {
	var missedErr error
	err := s.transactUntilDone(ctx, "count members", func() (*dynamodb.TransactWriteItemsInput, int, error) {
		return s.countTransaction(chunk), len(chunk), nil
	}, func(i int, item map[string]types.AttributeValue) {
		c, cv := chunk[i], countedVersion(item)
		if _, counted := item["cv"]; !counted {
			// Never counted (a member older than the counters, whom a
			// recount counts): from this delivery on.
			c.From = 0
		}
		if c.From > 0 && cv < c.From-1 {
			// Events before this delivery were never counted (a delivery
			// given up on): count them from the log first.
			missed, err := s.countsBetween(ctx, c.Member, cv+1, c.From-1)
			if err != nil {
				missedErr = err
				return
			}
			c.Changes, c.From = append(missed, c.Changes...), cv+1
			chunk[i] = c
			return
		}
		chunk[i] = countedAfter(c, cv)
	}, func() int {
		if missedErr != nil {
			return 0
		}
		chunk = slices.DeleteFunc(chunk, func(c licensing.Counted) bool { return len(c.Changes) == 0 })
		return len(chunk)
	})
	if err == nil {
		err = missedErr
	}
	return err
}

// countsBetween reads a member's events from version from to version to,
// with one Query, and returns their counter changes.
func (s *Store) countsBetween(ctx context.Context, member string, from, to int64) ([]licensing.Changes, error) {
	events, err := s.eventsBetween(ctx, member, from, to, true)
	if err != nil {
		return nil, err
	}
	var changes []licensing.Changes
	for _, e := range events {
		if d := licensing.CounterDeltas(e); len(d) > 0 {
			changes = append(changes, licensing.Changes{Version: e.Version, Deltas: d})
		}
	}
	return changes, nil
}

// transactUntilDone writes the transaction build makes (its first n items
// conditional, one per change) until it is written or nothing is left: a
// cancellation calls failed for each change whose condition failed (with
// the item DynamoDB returns), then trim, which drops what is done and says
// how many changes are left, and the rest is tried again; a conflict with
// another transaction, or a transient error, is retried with backoff, up to
// countAttempts tries.
func (s *Store) transactUntilDone(ctx context.Context, what string, build func() (*dynamodb.TransactWriteItemsInput, int, error),
	failed func(i int, item map[string]types.AttributeValue), trim func() int) error {
	left := 1
	for attempt := 1; left > 0; attempt++ {
		in, n, err := build()
		if err != nil {
			return err
		}
		out, err := s.db.TransactWriteItems(ctx, in)
		if err == nil {
			record(ctx, false, out.ConsumedCapacity...)
			return nil
		}
		record(ctx, false)
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
		if (!conflict && !transient(err)) || attempt >= countAttempts {
			return fmt.Errorf("%s (%d in the transaction): %w", what, n, unavailable(err))
		}
		if err := kernel.Backoff(ctx, 10*time.Millisecond, attempt); err != nil {
			return err
		}
	}
	return nil
}

// countTransaction is the transaction of a chunk: the members' counted
// items first, in order, then one update per scope.
func (s *Store) countTransaction(chunk []licensing.Counted) *dynamodb.TransactWriteItemsInput {
	in := &dynamodb.TransactWriteItemsInput{ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal}
	sums := map[string]map[string]int64{}
	var scopes []string
	h := fnv.New32a()
	for _, c := range chunk {
		first, last := c.Changes[0].Version, c.Changes[len(c.Changes)-1].Version
		fmt.Fprintf(h, "%s#%d;", c.Member, first)
		// Counted below the first change; with From, also every event
		// before From counted already (else the missed ones are counted
		// first: countChunk).
		cond := "attribute_not_exists(#cv) OR #cv < :first"
		values := map[string]types.AttributeValue{":it": str(kindCounted), ":last": num(last), ":first": num(first)}
		if c.From > 1 {
			cond = "#cv >= :prev AND #cv < :first"
			values[":prev"] = num(c.From - 1)
		}
		in.TransactItems = append(in.TransactItems, types.TransactWriteItem{Update: &types.Update{
			TableName: &s.table, Key: key(PartitionKey(c.Member), countedSK),
			UpdateExpression:                    aws.String("SET #it = :it, #cv = :last"),
			ConditionExpression:                 aws.String(cond),
			ExpressionAttributeNames:            map[string]string{"#it": "it", "#cv": "cv"},
			ExpressionAttributeValues:           values,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}})
		for _, ch := range c.Changes {
			for _, d := range ch.Deltas {
				if sums[d.Scope] == nil {
					sums[d.Scope] = map[string]int64{}
					scopes = append(scopes, d.Scope)
				}
				sums[d.Scope][d.Field] += d.Delta
			}
		}
	}
	shard := int(h.Sum32() % CounterShards)
	sort.Strings(scopes)
	for _, scope := range scopes {
		names := map[string]string{"#it": "it"}
		values := map[string]types.AttributeValue{":it": &types.AttributeValueMemberS{Value: kindCounter}}
		fields := slices.Sorted(maps.Keys(sums[scope]))
		expr := "SET #it = :it ADD "
		for i, f := range fields {
			if i > 0 {
				expr += ", "
			}
			n, v := fmt.Sprintf("#f%d", i), fmt.Sprintf(":v%d", i)
			names[n] = f
			values[v] = num(sums[scope][f])
			expr += n + " " + v
		}
		in.TransactItems = append(in.TransactItems, types.TransactWriteItem{Update: &types.Update{
			TableName: &s.table, Key: counterKey(scope, shard), UpdateExpression: aws.String(expr),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		}})
	}
	return in
}

// countedAfter keeps the changes of versions after v.
func countedAfter(c licensing.Counted, v int64) licensing.Counted {
	i := 0
	for i < len(c.Changes) && c.Changes[i].Version <= v {
		i++
	}
	c.Changes = c.Changes[i:]
	return c
}

func countedVersion(item map[string]types.AttributeValue) int64 {
	n, _ := item["cv"].(*types.AttributeValueMemberN)
	if n == nil {
		return 0
	}
	v, _ := strconv.ParseInt(n.Value, 10, 64)
	return v
}

// SetCounted records that a member's events up to version are counted (a
// counter rebuild counted them from the log).
func (s *Store) SetCounted(ctx context.Context, member string, version int64) error {
	item := key(PartitionKey(member), countedSK)
	item["it"], item["cv"] = str(kindCounted), num(version)
	out, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
	if err != nil {
		record(ctx, false)
		return fmt.Errorf("set counted of %s: %w", kernel.Pseudonym(member), unavailable(err))
	}
	record(ctx, false, one(out.ConsumedCapacity)...)
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
			return &kernel.Error{Kind: kernel.KindUnavailable, Code: kernel.CodeStoreUnavailable,
				Message: "the store is busy; retry shortly", Cause: fmt.Errorf("%d keys unprocessed after %d reads", len(req[s.table].Keys), batchGetAttempts)}
		}
		if attempt > 1 {
			if err := kernel.Backoff(ctx, 10*time.Millisecond, attempt); err != nil {
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
