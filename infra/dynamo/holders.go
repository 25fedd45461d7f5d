package dynamo

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/licensing"
)

// Holders is the index of the members that acquired each title, for a
// withdrawal to find them without a scan: a title's holders spread over
// HolderShards partitions, a member an item.
type Holders struct {
	t *Table
}

var _ licensing.HolderStore = (*Holders)(nil)

// NewHolders returns the holders index kept in t.
func NewHolders(t *Table) *Holders { return &Holders{t: t} }

const (
	kindHolder = "holder"
	// HolderShards is how many partitions a title's holders are spread
	// over, so a hit title's grants are written on several.
	HolderShards = 8
	holderPage   = 100
)

func holderPK(title string, shard int) string { return fmt.Sprintf("th#%s#%d", title, shard) }

func holderShard(member string) int {
	h := fnv.New32a()
	h.Write([]byte(member))
	return int(h.Sum32() % HolderShards)
}

// AddHolders implements licensing.HolderStore: BatchWriteItem puts, 25 at
// a time (a holder written again changes nothing).
func (s *Holders) AddHolders(ctx context.Context, hs []licensing.Holder) error {
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
	if err := s.t.batchWrite(ctx, reqs); err != nil {
		return fmt.Errorf("add holders: %w", err)
	}
	return nil
}

// Holders implements licensing.HolderStore: the title's shards one after
// another, a Query page of up to 100 members at a time; the cursor is the
// shard and the last member read.
func (s *Holders) Holders(ctx context.Context, title, after string, fn func(members []string, next string) error) error {
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
				TableName: &s.t.name, KeyConditionExpression: aws.String("pk = :pk"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(holderPK(title, shard))},
				Limit:                     aws.Int32(holderPage), ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
			}
			if last != "" {
				in.ExclusiveStartKey = key(holderPK(title, shard), last)
			}
			page, err := s.t.db.Query(ctx, in)
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
