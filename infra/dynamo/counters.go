package dynamo

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

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

// counterPrefix starts the partition of a counter scope's shard.
const counterPrefix = "c#"

func counterKey(scope string, shard int) map[string]types.AttributeValue {
	return key(fmt.Sprintf("%s%s#%d", counterPrefix, scope, shard), "c")
}

// Counters is the counter read models: per title and per studio and day,
// each spread over CounterShards items, and per member the last version
// counted. It reads the members' logs (for events a given-up delivery
// missed) through log, wherever that is kept.
type Counters struct {
	t   *Table
	log *Log
}

var _ licensing.CounterStore = (*Counters)(nil)

// NewCounters returns the counters kept in t, counting from the logs of log.
func NewCounters(t *Table, log *Log) *Counters { return &Counters{t: t, log: log} }

// countedSK is the sort key, in a member's partition, of the item that
// remembers the last version of the member counted (its "cv"). It does not
// start with "e#", so loads never read it.
const (
	countedSK   = "c#counted"
	kindCounted = "counted"
)

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
func (s *Counters) AddCounts(ctx context.Context, counted []licensing.Counted) ([]string, error) {
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

func (s *Counters) countChunk(ctx context.Context, chunk []licensing.Counted) error {
	var missedErr error
	err := s.t.transactUntilDone(ctx, "count members", func() (*dynamodb.TransactWriteItemsInput, int, error) {
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
// with one Query, and returns their counter changes. The events come
// before a record delivered from the table's stream, so the table holds
// them: an eventually consistent read is tried first (the only kind a
// region cut off from the others can make of a strongly consistent global
// table), and a strongly consistent one only if it lacks any.
func (s *Counters) countsBetween(ctx context.Context, member string, from, to int64) ([]licensing.Changes, error) {
	events, err := s.log.eventsBetween(ctx, member, from, to, false)
	if err != nil || int64(len(events)) != to-from+1 {
		events, err = s.log.eventsBetween(ctx, member, from, to, true)
	}
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

// countTransaction is the transaction of a chunk: the members' counted
// items first, in order, then one update per scope.
func (s *Counters) countTransaction(chunk []licensing.Counted) *dynamodb.TransactWriteItemsInput {
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
			TableName: &s.t.name, Key: key(LogPartition(c.Member), countedSK),
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
			TableName: &s.t.name, Key: counterKey(scope, shard), UpdateExpression: aws.String(expr),
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
func (s *Counters) SetCounted(ctx context.Context, member string, version int64) error {
	item := key(LogPartition(member), countedSK)
	item["it"], item["cv"] = str(kindCounted), num(version)
	if err := s.t.put(ctx, item, "", nil, nil, false); err != nil {
		return fmt.Errorf("set counted of %s: %w", kernel.Pseudonym(member), unavailable(err))
	}
	return nil
}

// Counts reads a counter scope: its fields summed over the shards, with one
// BatchGetItem.
func (s *Counters) Counts(ctx context.Context, scope string) (licensing.Counts, error) {
	keys := make([]map[string]types.AttributeValue, CounterShards)
	for i := range keys {
		keys[i] = counterKey(scope, i)
	}
	counts := licensing.Counts{}
	err := s.t.batchGet(ctx, keys, false, func(item map[string]types.AttributeValue) error {
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

// ReplaceCounts sets a counter scope to counts, replacing whatever its
// shards held: for rebuilds, with the stream function paused. The totals go
// to shard 0; the other shards are deleted.
func (s *Counters) ReplaceCounts(ctx context.Context, scope string, counts licensing.Counts) error {
	item := counterKey(scope, 0)
	item["it"] = str(kindCounter)
	for f, v := range counts {
		if f == "pk" || f == "sk" || f == "it" {
			return fmt.Errorf("counter %s: field name %q is reserved", scope, f)
		}
		item[f] = num(v)
	}
	if err := s.t.put(ctx, item, "", nil, nil, false); err != nil {
		return fmt.Errorf("replace counts of %s: %w", scope, unavailable(err))
	}
	var others []map[string]types.AttributeValue
	for i := 1; i < CounterShards; i++ {
		others = append(others, counterKey(scope, i))
	}
	if err := s.t.batchWrite(ctx, deletes(others)); err != nil {
		return fmt.Errorf("clear shards of %s: %w", scope, err)
	}
	return nil
}

// CounterScopes calls fn with every counter scope the table holds (a Scan:
// operators' tools only).
func (s *Counters) CounterScopes(ctx context.Context, fn func(scope string) error) error {
	seen := map[string]bool{}
	return s.t.scan(ctx, &dynamodb.ScanInput{
		FilterExpression:          aws.String("it = :c"),
		ProjectionExpression:      aws.String("pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": str(kindCounter)},
	}, func(item map[string]types.AttributeValue) error {
		pk, _ := strOf(item, "pk")
		if !strings.HasPrefix(pk, counterPrefix) {
			return nil
		}
		scope := strings.TrimPrefix(pk[:strings.LastIndex(pk, "#")], counterPrefix)
		if seen[scope] {
			return nil
		}
		seen[scope] = true
		return fn(scope)
	})
}
