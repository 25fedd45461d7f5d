package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

var (
	_ licensing.WithdrawalStore = (*Store)(nil)
	_ licensing.HolderStore     = (*Store)(nil)
)

// Withdrawals live in one partition (there are few), a title each.
const (
	withdrawalPK   = "wd"
	kindWithdrawal = "withdrawal"
	kindHolder     = "holder"
	// HolderShards is how many partitions a title's holders are spread
	// over, so a hit title's grants are written on several.
	HolderShards = 8
	holderPage   = 100
)

type withdrawalItem struct {
	PK       string `dynamodbav:"pk"`
	SK       string `dynamodbav:"sk"`
	Kind     string `dynamodbav:"it"`
	Title    string `dynamodbav:"t"`
	From     int64  `dynamodbav:"from"`
	Recorded int64  `dynamodbav:"rec"`
	Members  int    `dynamodbav:"mem"`
	Ended    int    `dynamodbav:"ended"`
	Cursor   string `dynamodbav:"cur,omitempty"`
	Done     bool   `dynamodbav:"done"`
}

func (it withdrawalItem) withdrawal() licensing.Withdrawal {
	return licensing.Withdrawal{Title: it.Title, From: fromMs(it.From), RecordedAt: fromMs(it.Recorded), Members: it.Members, Ended: it.Ended, Cursor: it.Cursor, Done: it.Done}
}

// RecordWithdrawal implements licensing.WithdrawalStore: one PutItem on
// attribute_not_exists(sk).
func (s *Store) RecordWithdrawal(ctx context.Context, w licensing.Withdrawal) (licensing.Withdrawal, bool, error) {
	item, err := attributevalue.MarshalMap(withdrawalItem{PK: withdrawalPK, SK: "t#" + w.Title, Kind: kindWithdrawal, Title: w.Title, From: ms(w.From), Recorded: ms(w.RecordedAt)})
	if err != nil {
		return w, false, err
	}
	out, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(sk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		record(ctx, false)
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			var held withdrawalItem
			if err := attributevalue.UnmarshalMap(ccf.Item, &held); err != nil {
				return w, false, err
			}
			return held.withdrawal(), false, nil
		}
		return w, false, fmt.Errorf("record the withdrawal of %s: %w", w.Title, unavailable(err))
	}
	record(ctx, false, one(out.ConsumedCapacity)...)
	return w, true, nil
}

// SaveProgress implements licensing.WithdrawalStore: one UpdateItem.
func (s *Store) SaveProgress(ctx context.Context, w licensing.Withdrawal) error {
	_, _, err := s.update(ctx, key(withdrawalPK, "t#"+w.Title), "SET #mem = :m, #ended = :e, #cur = :c, #done = :d", "attribute_exists(sk)",
		map[string]types.AttributeValue{":m": num(int64(w.Members)), ":e": num(int64(w.Ended)), ":c": str(w.Cursor), ":d": &types.AttributeValueMemberBOOL{Value: w.Done}})
	if err != nil {
		return fmt.Errorf("save the withdrawal of %s: %w", w.Title, err)
	}
	return nil
}

// Withdrawals implements licensing.WithdrawalStore: one Query of their
// partition.
func (s *Store) Withdrawals(ctx context.Context) ([]licensing.Withdrawal, error) {
	in := &dynamodb.QueryInput{
		TableName: &s.table, KeyConditionExpression: aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(withdrawalPK)},
		ConsistentRead:            aws.Bool(true),
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	}
	var out []licensing.Withdrawal
	for {
		page, err := s.db.Query(ctx, in)
		if err != nil {
			record(ctx, true)
			return nil, fmt.Errorf("query withdrawals: %w", unavailable(err))
		}
		record(ctx, true, one(page.ConsumedCapacity)...)
		for _, item := range page.Items {
			var it withdrawalItem
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return nil, err
			}
			out = append(out, it.withdrawal())
		}
		if page.LastEvaluatedKey == nil {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

func holderPK(title string, shard int) string { return fmt.Sprintf("th#%s#%d", title, shard) }

func holderShard(member string) int {
	h := fnv.New32a()
	h.Write([]byte(member))
	return int(h.Sum32() % HolderShards)
}

// AddHolders implements licensing.HolderStore: BatchWriteItem puts, 25 at
// a time (a holder written again changes nothing).
func (s *Store) AddHolders(ctx context.Context, hs []licensing.Holder) error {
	seen := map[licensing.Holder]bool{}
	var reqs []types.WriteRequest
	for _, h := range hs {
		if seen[h] {
			continue
		}
		seen[h] = true
		item := key(holderPK(h.Title, holderShard(h.Member)), h.Member)
		item["it"] = str(kindHolder)
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
	}
	for len(reqs) > 0 {
		n := min(len(reqs), 25)
		pending := map[string][]types.WriteRequest{s.table: reqs[:n]}
		for attempt := 1; len(pending) > 0; attempt++ {
			if attempt > batchGetAttempts {
				return fmt.Errorf("add holders: %d unprocessed", len(pending[s.table]))
			}
			if attempt > 1 {
				if err := kernel.Backoff(ctx, 10*time.Millisecond, attempt); err != nil {
					return err
				}
			}
			out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
			if err != nil {
				record(ctx, false)
				return fmt.Errorf("add holders: %w", unavailable(err))
			}
			record(ctx, false, out.ConsumedCapacity...)
			pending = out.UnprocessedItems
		}
		reqs = reqs[n:]
	}
	return nil
}

// Holders implements licensing.HolderStore: the title's shards one after
// another, a Query page of up to 100 members at a time; the cursor is the
// shard and the last member read.
func (s *Store) Holders(ctx context.Context, title, after string, fn func(members []string, next string) error) error {
	shard, last := 0, ""
	if after == licensing.HoldersDone {
		return nil
	}
	if after != "" {
		n, m, ok := strings.Cut(after, ":")
		v, err := strconv.Atoi(n)
		if !ok || err != nil || v < 0 || v >= HolderShards {
			return fmt.Errorf("bad holders cursor %q", after)
		}
		shard, last = v, m
	}
	for ; shard < HolderShards; shard, last = shard+1, "" {
		for {
			in := &dynamodb.QueryInput{
				TableName: &s.table, KeyConditionExpression: aws.String("pk = :pk"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(holderPK(title, shard))},
				Limit:                     aws.Int32(holderPage), ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
			}
			if last != "" {
				in.ExclusiveStartKey = key(holderPK(title, shard), last)
			}
			page, err := s.db.Query(ctx, in)
			if err != nil {
				record(ctx, true)
				return fmt.Errorf("query the holders of %s: %w", title, unavailable(err))
			}
			record(ctx, true, one(page.ConsumedCapacity)...)
			var members []string
			for _, item := range page.Items {
				if sk, ok := item["sk"].(*types.AttributeValueMemberS); ok {
					members = append(members, sk.Value)
				}
			}
			if len(members) > 0 {
				last = members[len(members)-1]
			}
			next := fmt.Sprintf("%d:%s", shard, last)
			if page.LastEvaluatedKey == nil {
				next = fmt.Sprintf("%d:", shard+1)
				if shard+1 == HolderShards {
					next = licensing.HoldersDone
				}
			}
			if len(members) > 0 || next == licensing.HoldersDone {
				if err := fn(slices.Clip(members), next); err != nil {
					return err
				}
			}
			if page.LastEvaluatedKey == nil {
				break
			}
		}
	}
	return nil
}

var _ licensing.RefusalStore = (*Store)(nil)

const kindRefusal = "refusal"

// RecordRefusal implements licensing.RefusalStore: one plain PutItem in the
// member's partition, under x# (loads read only e#), expiring with the
// table's TTL attribute after licensing.RefusalRetention.
func (s *Store) RecordRefusal(ctx context.Context, member string, r licensing.Refusal) error {
	d, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var tail [4]byte
	rand.Read(tail[:])
	item := key(PartitionKey(member), fmt.Sprintf("x#%013d#%x", ms(r.At), tail))
	item["it"], item["d"], item["ttl"] = str(kindRefusal), str(string(d)), num(r.At.Add(licensing.RefusalRetention).Unix())
	out, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
	if err != nil {
		record(ctx, false)
		return fmt.Errorf("keep a refusal: %w", unavailable(err))
	}
	record(ctx, false, one(out.ConsumedCapacity)...)
	return nil
}

// Refusals implements licensing.RefusalStore: one Query, newest first.
func (s *Store) Refusals(ctx context.Context, member string, limit int) ([]licensing.Refusal, error) {
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: &s.table, KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :x)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(PartitionKey(member)), ":x": str("x#")},
		ScanIndexForward:          aws.Bool(false), Limit: aws.Int32(int32(limit)),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		record(ctx, true)
		return nil, fmt.Errorf("query refusals: %w", unavailable(err))
	}
	record(ctx, true, one(out.ConsumedCapacity)...)
	rs := []licensing.Refusal{}
	for _, item := range out.Items {
		d, _ := item["d"].(*types.AttributeValueMemberS)
		if d == nil {
			continue
		}
		var r licensing.Refusal
		if err := json.Unmarshal([]byte(d.Value), &r); err != nil {
			return nil, fmt.Errorf("refusal of %s: %w", kernel.Pseudonym(member), err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}
