package dynamo

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/viewing"
)

// engagementKey is the item of a title's engagement on a day in one of
// CounterShards partitions of the day: a premiere is written on several
// partitions, and a day's titles are read with one Query per shard.
func engagementKey(day string, shard int, title string) map[string]types.AttributeValue {
	return key(engagementPK(day, shard), "t#"+title)
}

func engagementPK(day string, shard int) string { return fmt.Sprintf("g#%s#%d", day, shard) }

func engagementOf(item map[string]types.AttributeValue) (title string, e viewing.Engagement) {
	n := func(a string) int64 {
		x, _ := item[a].(*types.AttributeValueMemberN)
		if x == nil {
			return 0
		}
		v, _ := strconv.ParseInt(x.Value, 10, 64)
		return v
	}
	t, _ := item["t"].(*types.AttributeValueMemberS)
	if t != nil {
		title = t.Value
	}
	return title, viewing.Engagement{Views: n("n"), WatchedMs: n("w"), Completions: n("c")}
}

// Engagement implements viewing.HistoryStore: one BatchGetItem of the
// title's shards of the day, summed.
func (s *History) Engagement(ctx context.Context, title, day string) (viewing.Engagement, error) {
	keys := make([]map[string]types.AttributeValue, CounterShards)
	for i := range keys {
		keys[i] = engagementKey(day, i, title)
	}
	var sum viewing.Engagement
	err := s.t.batchGet(ctx, keys, false, func(item map[string]types.AttributeValue) error {
		_, e := engagementOf(item)
		sum.Add(e)
		return nil
	})
	return sum, err
}

// DayEngagement implements viewing.HistoryStore: one Query per shard of the
// day (more if a shard holds over 1 MB), summed by title.
func (s *History) DayEngagement(ctx context.Context, day string) (map[string]viewing.Engagement, error) {
	out := map[string]viewing.Engagement{}
	for shard := range CounterShards {
		err := s.t.query(ctx, &dynamodb.QueryInput{
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(engagementPK(day, shard))},
		}, func(item map[string]types.AttributeValue) error {
			t, e := engagementOf(item)
			sum := out[t]
			sum.Add(e)
			out[t] = sum
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("query engagement of %s: %w", day, err)
		}
	}
	return out, nil
}

// ReplaceEngagement replaces every engagement count: a Scan for the items
// held and deletes of them all, then one PutItem per title and day with its
// totals on shard 0.
func (s *History) ReplaceEngagement(ctx context.Context, counts map[string]map[string]viewing.Engagement) (int, error) {
	var held []map[string]types.AttributeValue
	err := s.t.scan(ctx, &dynamodb.ScanInput{
		FilterExpression:          aws.String("#it = :k"),
		ProjectionExpression:      aws.String("pk, sk"),
		ExpressionAttributeNames:  map[string]string{"#it": "it"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": str(kindEngagement)},
	}, func(item map[string]types.AttributeValue) error {
		held = append(held, keyOf(item))
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := s.t.batchWrite(ctx, deletes(held)); err != nil {
		return 0, fmt.Errorf("clear engagement: %w", err)
	}
	for day, titles := range counts {
		for title, e := range titles {
			item := engagementKey(day, 0, title)
			item["it"], item["t"], item["n"], item["w"], item["c"] = str(kindEngagement), str(title), num(e.Views), num(e.WatchedMs), num(e.Completions)
			if err := s.t.put(ctx, item, "", nil, nil, false); err != nil {
				return len(held), fmt.Errorf("write engagement: %w", unavailable(err))
			}
		}
	}
	return len(held), nil
}
