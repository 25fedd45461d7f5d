package dynamo

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/viewing"
)

// Item kinds of the history read models.
const (
	// historyPrefix starts the sort key of a history entry
	// (viewing.HistoryKey) and of the erasure.
	historyPrefix  = "h#"
	kindHistory    = "history"
	kindRow        = "row"
	kindEngagement = "engagement"
)

// History is the history read models the stream function keeps and the
// API reads: each member's history entries, recently watched rows and
// erasure, in the member's viewing partition, and each day's engagement
// counts. An erasure also ends the member's screens and resume points,
// through views, wherever those are kept.
//
// The read models are in t; a request to erase is in requests, which every
// region's stream function sees (the screens' table; it may be t): each
// region erases its own read models and marks its erasure done in t.
type History struct {
	t        *Table
	requests *Table
	views    *Views
}

var _ viewing.HistoryStore = (*History)(nil)

// NewHistory returns the history read models kept in t, with erasure
// requests in requests; views holds the screens and resume points an
// erasure ends.
func NewHistory(t, requests *Table, views *Views) *History {
	return &History{t: t, requests: requests, views: views}
}

// historyItem is one view of a member's history, in the member's viewing
// partition under viewing.HistoryKey: the stream function writes it when
// it sees the view start, and its totals once when it sees the view end.
type historyItem struct {
	PK       string `dynamodbav:"pk"`
	SK       string `dynamodbav:"sk"`
	Kind     string `dynamodbav:"it"`
	View     string `dynamodbav:"vid"`
	Title    string `dynamodbav:"t"`
	Profile  string `dynamodbav:"pf,omitempty"`
	Device   string `dynamodbav:"dev"`
	Started  int64  `dynamodbav:"sa"`
	LastSeen int64  `dynamodbav:"ls"`
	Position int64  `dynamodbav:"pos"`
	Furthest int64  `dynamodbav:"fp"`
	Watched  int64  `dynamodbav:"w"`
	Ended    string `dynamodbav:"er,omitempty"`
}

func marshalHistory(member string, e viewing.HistoryEntry) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMap(historyItem{
		PK: ViewingPartition(member), SK: e.Key(), Kind: kindHistory, View: e.View, Title: e.Title, Profile: e.Profile,
		Device: e.Device, Started: ms(e.Started), LastSeen: ms(e.LastSeen), Position: e.PositionMs, Furthest: e.FurthestMs,
		Watched: e.WatchedMs, Ended: string(e.Ended),
	})
}

func unmarshalHistory(av map[string]types.AttributeValue) (viewing.HistoryEntry, error) {
	var it historyItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return viewing.HistoryEntry{}, fmt.Errorf("unmarshal history item: %w", err)
	}
	return viewing.HistoryEntry{
		View: it.View, Title: it.Title, Profile: it.Profile, Device: it.Device, Started: fromMs(it.Started), LastSeen: fromMs(it.LastSeen),
		PositionMs: it.Position, FurthestMs: it.Furthest, WatchedMs: it.Watched, Ended: viewing.EndReason(it.Ended),
	}, nil
}

// RecordHistory implements viewing.HistoryStore with transactions of up to
// 100 items: each change's history entry, written on a condition (an open
// if the entry does not exist; a close if it exists and is not closed),
// and one ADD per title and day with the counts of the transaction's
// changes summed (the shard picked by the transaction). A change applied
// already fails its condition: the transaction is cancelled, the change
// dropped and the rest written again. A close that finds no entry (its
// start was never seen) writes the whole entry and counts its start too.
func (s *History) RecordHistory(ctx context.Context, changes []viewing.HistoryMemberChange) error {
	// One write per entry: a transaction may not write an item twice. A
	// close supersedes an open of its view (it writes the entry whole if
	// the open never landed); a second open or close of a view is dropped.
	var pending []viewing.HistoryMemberChange
	at := map[[2]string]int{}
	for _, c := range changes {
		k := [2]string{c.Member, c.Entry.Key()}
		i, seen := at[k]
		switch {
		case !seen:
			at[k] = len(pending)
			pending = append(pending, c)
		case c.EndOnly && !pending[i].Closed:
			// The end of a view opened in the same batch: the open's entry,
			// ended (written whole if the open never landed).
			end := pending[i]
			end.Entry.Ended, end.Closed, end.Count = c.Entry.Ended, true, viewing.Engagement{}
			pending[i] = end
		case c.Closed && (!pending[i].Closed || pending[i].EndOnly && !c.EndOnly):
			pending[i] = c
		}
	}
	for len(pending) > 0 {
		n := historyChunk(pending)
		if err := s.recordChunk(ctx, slices.Clone(pending[:n])); err != nil {
			return err
		}
		pending = pending[n:]
	}
	return nil
}

// historyChunk is how many of the first changes fit one transaction: their
// entries and the engagement items they add to.
func historyChunk(changes []viewing.HistoryMemberChange) int {
	scopes := map[string]bool{}
	for i, c := range changes {
		scopes[viewing.Day(c.Entry.Started)+"#"+c.Entry.Title] = true
		if i > 0 && i+1+len(scopes) > maxTransactItems {
			return i
		}
	}
	return len(changes)
}

// historyChange is a change as a transaction writes it: create means the
// entry is written whole, on the condition that it does not exist.
type historyChange struct {
	viewing.HistoryMemberChange
	create bool
}

func (s *History) recordChunk(ctx context.Context, chunk []viewing.HistoryMemberChange) error {
	cs := make([]historyChange, len(chunk))
	for i, c := range chunk {
		cs[i] = historyChange{HistoryMemberChange: c, create: !c.Closed}
	}
	return s.t.transactUntilDone(ctx, "record history changes", func() (*dynamodb.TransactWriteItemsInput, int, error) {
		in, err := s.historyTransaction(cs)
		return in, len(cs), err
	}, func(i int, item map[string]types.AttributeValue) {
		if cs[i].Closed && !cs[i].create && len(item) == 0 {
			// A close of an entry never opened: write it whole, and count
			// its start too.
			cs[i].create = true
			cs[i].Count.Add(viewing.StartEngagement(cs[i].Entry))
			return
		}
		cs[i].Entry.View = "" // applied already: dropped
	}, func() int {
		cs = slices.DeleteFunc(cs, func(c historyChange) bool { return c.Entry.View == "" })
		return len(cs)
	})
}

// historyTransaction is the transaction of a chunk: the entries first, in
// order, then one ADD per title and day.
func (s *History) historyTransaction(cs []historyChange) (*dynamodb.TransactWriteItemsInput, error) {
	in := &dynamodb.TransactWriteItemsInput{ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal}
	sums := map[[2]string]viewing.Engagement{}
	var scopes [][2]string
	h := fnv.New32a()
	for _, c := range cs {
		fmt.Fprintf(h, "%s#%s;", c.Member, c.Entry.View)
		item, err := marshalHistory(c.Member, c.Entry)
		if err != nil {
			return nil, err
		}
		switch {
		case c.create:
			in.TransactItems = append(in.TransactItems, types.TransactWriteItem{Put: &types.Put{
				TableName: &s.t.name, Item: item, ConditionExpression: aws.String("attribute_not_exists(sk)"),
			}})
		case c.EndOnly:
			in.TransactItems = append(in.TransactItems, types.TransactWriteItem{Update: &types.Update{
				TableName: &s.t.name, Key: key(ViewingPartition(c.Member), c.Entry.Key()),
				UpdateExpression:                    aws.String("SET #er = :er"),
				ConditionExpression:                 aws.String("attribute_exists(sk) AND attribute_not_exists(#er)"),
				ExpressionAttributeNames:            map[string]string{"#er": "er"},
				ExpressionAttributeValues:           map[string]types.AttributeValue{":er": str(string(c.Entry.Ended))},
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}})
		default:
			var sets []string
			values := map[string]types.AttributeValue{}
			names := map[string]string{}
			for _, a := range slices.Sorted(maps.Keys(item)) {
				if a == "pk" || a == "sk" {
					continue
				}
				names["#"+a], values[":"+a] = a, item[a]
				sets = append(sets, "#"+a+" = :"+a)
			}
			names["#er"] = "er"
			in.TransactItems = append(in.TransactItems, types.TransactWriteItem{Update: &types.Update{
				TableName: &s.t.name, Key: key(ViewingPartition(c.Member), c.Entry.Key()),
				UpdateExpression:         aws.String("SET " + strings.Join(sets, ", ")),
				ConditionExpression:      aws.String("attribute_exists(sk) AND attribute_not_exists(#er)"),
				ExpressionAttributeNames: names, ExpressionAttributeValues: values,
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}})
		}
		k := [2]string{viewing.Day(c.Entry.Started), c.Entry.Title}
		if _, ok := sums[k]; !ok {
			scopes = append(scopes, k)
		}
		e := sums[k]
		e.Add(c.Count)
		sums[k] = e
	}
	shard := int(h.Sum32() % CounterShards)
	sort.Slice(scopes, func(i, j int) bool { return scopes[i][0]+scopes[i][1] < scopes[j][0]+scopes[j][1] })
	for _, k := range scopes {
		e := sums[k]
		if e == (viewing.Engagement{}) {
			continue
		}
		in.TransactItems = append(in.TransactItems, types.TransactWriteItem{Update: &types.Update{
			TableName: &s.t.name, Key: engagementKey(k[0], shard, k[1]),
			UpdateExpression:         aws.String("SET #it = :it, #t = :t ADD #n :n, #w :w, #c :c"),
			ExpressionAttributeNames: map[string]string{"#it": "it", "#t": "t", "#n": "n", "#w": "w", "#c": "c"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":it": str(kindEngagement), ":t": str(k[1]), ":n": num(e.Views), ":w": num(e.WatchedMs), ":c": num(e.Completions),
			},
		}})
	}
	return in, nil
}

// History implements viewing.HistoryStore with one eventually consistent
// Query, newest first, from after (exclusive).
func (s *History) History(ctx context.Context, member, after string, limit int) ([]viewing.HistoryEntry, bool, error) {
	pk := ViewingPartition(member)
	in := &dynamodb.QueryInput{
		TableName:              &s.t.name,
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(pk), ":lo": str(historyPrefix), ":hi": str(historyUpper),
		},
		ScanIndexForward:       aws.Bool(false),
		Limit:                  aws.Int32(int32(limit + 2)), // the erasure item, and one to tell whether there are more
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	}
	if after != "" {
		in.ExclusiveStartKey = key(pk, after)
	}
	out, err := s.t.db.Query(ctx, in)
	if err != nil {
		record(ctx, true)
		return nil, false, fmt.Errorf("query history: %w", unavailable(err))
	}
	record(ctx, true, one(out.ConsumedCapacity)...)
	var entries []viewing.HistoryEntry
	for _, item := range out.Items {
		if sk, _ := item["sk"].(*types.AttributeValueMemberS); sk != nil && sk.Value == erasureSK {
			if k, _ := item["it"].(*types.AttributeValueMemberS); k != nil && k.Value == kindErasure {
				return nil, false, viewing.ErrErasurePending
			}
			continue
		}
		e, err := unmarshalHistory(item)
		if err != nil {
			return nil, false, err
		}
		entries = append(entries, e)
	}
	more := len(entries) > limit
	if more {
		entries = entries[:limit]
	}
	return entries, more, nil
}
