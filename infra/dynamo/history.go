package dynamo

import (
	"context"
	"encoding/json"
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
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
)

var _ viewing.HistoryStore = (*Store)(nil)

// Item kinds of the history read models.
const (
	kindHistory    = "history"
	kindRow        = "row"
	kindEngagement = "engagement"
)

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

// engagementKey is the item of a title's engagement on a day in one of
// CounterShards partitions of the day: a premiere is written on several
// partitions, and a day's titles are read with one Query per shard.
func engagementKey(day string, shard int, title string) map[string]types.AttributeValue {
	return key(fmt.Sprintf("g#%s#%d", day, shard), "t#"+title)
}

// RecordHistory implements viewing.HistoryStore with transactions of up to
// 100 items: each change's history entry, written on a condition (an open
// if the entry does not exist; a close if it exists and is not closed),
// and one ADD per title and day with the counts of the transaction's
// changes summed (the shard picked by the transaction). A change applied
// already fails its condition: the transaction is cancelled, the change
// dropped and the rest written again. A close that finds no entry (its
// start was never seen) writes the whole entry and counts its start too.
func (s *Store) RecordHistory(ctx context.Context, changes []viewing.HistoryMemberChange) error {
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

func (s *Store) recordChunk(ctx context.Context, chunk []viewing.HistoryMemberChange) error {
	cs := make([]historyChange, len(chunk))
	for i, c := range chunk {
		cs[i] = historyChange{HistoryMemberChange: c, create: !c.Closed}
	}
	return s.transactUntilDone(ctx, "record history changes", func() (*dynamodb.TransactWriteItemsInput, int, error) {
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
func (s *Store) historyTransaction(cs []historyChange) (*dynamodb.TransactWriteItemsInput, error) {
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
				TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(sk)"),
			}})
		case c.EndOnly:
			in.TransactItems = append(in.TransactItems, types.TransactWriteItem{Update: &types.Update{
				TableName: &s.table, Key: key(ViewingPartition(c.Member), c.Entry.Key()),
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
				TableName: &s.table, Key: key(ViewingPartition(c.Member), c.Entry.Key()),
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
			TableName: &s.table, Key: engagementKey(k[0], shard, k[1]),
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
func (s *Store) History(ctx context.Context, member, after string, limit int) ([]viewing.HistoryEntry, bool, error) {
	pk := ViewingPartition(member)
	in := &dynamodb.QueryInput{
		TableName:              &s.table,
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(pk), ":lo": str("h#"), ":hi": str(historyUpper),
		},
		ScanIndexForward:       aws.Bool(false),
		Limit:                  aws.Int32(int32(limit + 2)), // the erasure item, and one to tell whether there are more
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	}
	if after != "" {
		in.ExclusiveStartKey = key(pk, after)
	}
	out, err := s.db.Query(ctx, in)
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

// rowSK is the item of a profile's recently watched row.
func rowSK(profile string) string {
	if profile == "" {
		profile = "-"
	}
	return "w#" + profile
}

// rowEntry is a row entry as stored, in the row item's JSON attribute.
type rowEntry struct {
	Title    string `json:"t"`
	View     string `json:"v"`
	Started  int64  `json:"s"`
	Position int64  `json:"p"`
	Furthest int64  `json:"f"`
	At       int64  `json:"a"`
}

func (s *Store) readRow(ctx context.Context, member, profile string, consistent bool) (*viewing.Row, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: key(ViewingPartition(member), rowSK(profile)), ConsistentRead: aws.Bool(consistent),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		record(ctx, true)
		return nil, fmt.Errorf("read row: %w", unavailable(err))
	}
	record(ctx, true, one(out.ConsumedCapacity)...)
	r := &viewing.Row{Profile: profile}
	if len(out.Item) == 0 {
		return r, nil
	}
	if v, ok := out.Item["ver"].(*types.AttributeValueMemberN); ok {
		r.Version, _ = strconv.ParseInt(v.Value, 10, 64)
	}
	d, _ := out.Item["d"].(*types.AttributeValueMemberS)
	if d == nil {
		return r, nil
	}
	var es []rowEntry
	if err := json.Unmarshal([]byte(d.Value), &es); err != nil {
		return nil, fmt.Errorf("row of %s: %w", kernel.Pseudonym(member), err)
	}
	for _, e := range es {
		r.Entries = append(r.Entries, viewing.RowEntry{Title: e.Title, View: e.View, Started: fromMs(e.Started), PositionMs: e.Position, FurthestMs: e.Furthest, At: fromMs(e.At)})
	}
	return r, nil
}

// Row implements viewing.HistoryStore with one eventually consistent
// GetItem.
func (s *Store) Row(ctx context.Context, member, profile string) (*viewing.Row, error) {
	return s.readRow(ctx, member, profile, false)
}

// rowItem is a row as stored.
func rowItem(member, profile string, r *viewing.Row) (map[string]types.AttributeValue, error) {
	stored := make([]rowEntry, len(r.Entries))
	for i, e := range r.Entries {
		stored[i] = rowEntry{Title: e.Title, View: e.View, Started: ms(e.Started), Position: e.PositionMs, Furthest: e.FurthestMs, At: ms(e.At)}
	}
	d, err := json.Marshal(stored)
	if err != nil {
		return nil, err
	}
	item := key(ViewingPartition(member), rowSK(profile))
	item["it"], item["pf"], item["ver"], item["d"] = str(kindRow), str(profile), num(r.Version), str(string(d))
	return item, nil
}

// rowAttempts bounds the read-and-write rounds of one row update.
const rowAttempts = 8

// WatchRow implements viewing.HistoryStore: a strongly consistent read of
// the row, then a write conditioned on its version; a lost race reads again.
func (s *Store) WatchRow(ctx context.Context, member, profile string, es []viewing.HistoryEntry) error {
	for attempt := 1; ; attempt++ {
		r, err := s.readRow(ctx, member, profile, true)
		if err != nil {
			return err
		}
		changed := false
		for _, e := range es {
			changed = r.Watch(e) || changed
		}
		if !changed {
			return nil
		}
		next := *r
		next.Version++
		item, err := rowItem(member, profile, &next)
		if err != nil {
			return err
		}
		cond, values := "attribute_not_exists(sk)", map[string]types.AttributeValue{}
		if r.Version > 0 {
			cond, values[":v"] = "ver = :v", num(r.Version)
		}
		in := &dynamodb.PutItemInput{TableName: &s.table, Item: item, ConditionExpression: aws.String(cond), ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal}
		if len(values) > 0 {
			in.ExpressionAttributeValues = values
		}
		out, err := s.db.PutItem(ctx, in)
		if err == nil {
			record(ctx, false, one(out.ConsumedCapacity)...)
			return nil
		}
		record(ctx, false)
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) || attempt >= rowAttempts {
			return fmt.Errorf("write row: %w", unavailable(err))
		}
		if err := kernel.Backoff(ctx, 5*time.Millisecond, attempt); err != nil {
			return err
		}
	}
}

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
func (s *Store) Engagement(ctx context.Context, title, day string) (viewing.Engagement, error) {
	keys := make([]map[string]types.AttributeValue, CounterShards)
	for i := range keys {
		keys[i] = engagementKey(day, i, title)
	}
	var sum viewing.Engagement
	err := s.batchGet(ctx, keys, false, func(item map[string]types.AttributeValue) error {
		_, e := engagementOf(item)
		sum.Add(e)
		return nil
	})
	return sum, err
}

// DayEngagement implements viewing.HistoryStore: one Query per shard of the
// day (more if a shard holds over 1 MB), summed by title.
func (s *Store) DayEngagement(ctx context.Context, day string) (map[string]viewing.Engagement, error) {
	out := map[string]viewing.Engagement{}
	for shard := range CounterShards {
		in := &dynamodb.QueryInput{
			TableName:                 &s.table,
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(fmt.Sprintf("g#%s#%d", day, shard))},
			ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
		}
		for {
			page, err := s.db.Query(ctx, in)
			if err != nil {
				record(ctx, true)
				return nil, fmt.Errorf("query engagement of %s: %w", day, unavailable(err))
			}
			record(ctx, true, one(page.ConsumedCapacity)...)
			for _, item := range page.Items {
				t, e := engagementOf(item)
				sum := out[t]
				sum.Add(e)
				out[t] = sum
			}
			if page.LastEvaluatedKey == nil {
				break
			}
			in.ExclusiveStartKey = page.LastEvaluatedKey
		}
	}
	return out, nil
}

// The erasure of a member's viewing data is one item in the viewing
// partition, in the history's key range (so that a history read sees it
// first): it = "erasure" while under way (the stream function's filter
// passes it), "erased" once done; at = as of when (Unix ms).
const (
	erasureSK    = "h#~erasure"
	kindErasure  = "erasure"
	kindErased   = "erased"
	historyUpper = "h#~~" // above every history key and the erasure
)

// MarshalErasure is the item of a pending erasure; the embedded store's
// stream feed builds the same record from it.
func MarshalErasure(member string, at time.Time) map[string]types.AttributeValue {
	item := key(ViewingPartition(member), erasureSK)
	item["it"], item["at"] = str(kindErasure), num(ms(at))
	return item
}

// UnmarshalErasure reads a pending erasure item, as a stream record's new
// image carries it. ok is false for items of other kinds.
func UnmarshalErasure(av map[string]types.AttributeValue) (member string, at time.Time, ok bool, err error) {
	if k, _ := av["it"].(*types.AttributeValueMemberS); k == nil || k.Value != kindErasure {
		return "", time.Time{}, false, nil
	}
	pk, _ := av["pk"].(*types.AttributeValueMemberS)
	n, _ := av["at"].(*types.AttributeValueMemberN)
	if pk == nil || n == nil {
		return "", time.Time{}, false, fmt.Errorf("erasure item without pk or at")
	}
	member, found := strings.CutPrefix(pk.Value, "v#")
	v, perr := strconv.ParseInt(n.Value, 10, 64)
	if !found || perr != nil {
		return "", time.Time{}, false, fmt.Errorf("erasure item %s: bad key or time", pk.Value)
	}
	return member, fromMs(v), true, nil
}

// partitionItems queries a member's viewing partition with begins_with on
// each prefix, page by page, calling fn with each item.
func (s *Store) partitionItems(ctx context.Context, member string, prefixes []string, fn func(map[string]types.AttributeValue)) error {
	for _, prefix := range prefixes {
		in := &dynamodb.QueryInput{
			TableName:              &s.table,
			KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :p)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": str(ViewingPartition(member)), ":p": str(prefix),
			},
			ConsistentRead:         aws.Bool(true),
			ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
		}
		for {
			out, err := s.db.Query(ctx, in)
			if err != nil {
				record(ctx, true)
				return fmt.Errorf("query the viewing data of %s: %w", kernel.Pseudonym(member), unavailable(err))
			}
			record(ctx, true, one(out.ConsumedCapacity)...)
			for _, item := range out.Items {
				fn(item)
			}
			if out.LastEvaluatedKey == nil {
				break
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
	return nil
}

// deleteKeys deletes items with BatchWriteItem, 25 at a time, retrying
// what DynamoDB leaves unprocessed.
func (s *Store) deleteKeys(ctx context.Context, keys []map[string]types.AttributeValue) error {
	for len(keys) > 0 {
		n := min(len(keys), 25)
		var reqs []types.WriteRequest
		for _, k := range keys[:n] {
			reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k}})
		}
		pending := map[string][]types.WriteRequest{s.table: reqs}
		for attempt := 1; len(pending) > 0; attempt++ {
			if attempt > batchGetAttempts {
				return fmt.Errorf("delete: %d items unprocessed", len(pending[s.table]))
			}
			if attempt > 1 {
				if err := kernel.Backoff(ctx, 10*time.Millisecond, attempt); err != nil {
					return err
				}
			}
			out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
			if err != nil {
				record(ctx, false)
				return fmt.Errorf("delete: %w", unavailable(err))
			}
			record(ctx, false, out.ConsumedCapacity...)
			pending = out.UnprocessedItems
		}
		keys = keys[n:]
	}
	return nil
}

func keyOf(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": item["pk"], "sk": item["sk"]}
}

// BeginErasure implements viewing.HistoryStore: a strongly consistent read
// of the erasure item, the deletion of the screens and rows, then the
// erasure item, written on the condition that no erasure is under way.
func (s *Store) BeginErasure(ctx context.Context, member string, at time.Time) error {
	pk := ViewingPartition(member)
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(pk, erasureSK), ConsistentRead: aws.Bool(true), ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
	if err != nil {
		record(ctx, true)
		return fmt.Errorf("read the erasure of %s: %w", kernel.Pseudonym(member), unavailable(err))
	}
	record(ctx, true, one(out.ConsumedCapacity)...)
	if k, _ := out.Item["it"].(*types.AttributeValueMemberS); k != nil && k.Value == kindErasure {
		var held int64
		if n, _ := out.Item["at"].(*types.AttributeValueMemberN); n != nil {
			held, _ = strconv.ParseInt(n.Value, 10, 64)
		}
		if held == 0 || ms(at.Add(-viewing.StaleErasure)) <= held {
			return viewing.ErrErasurePending
		}
		// Under way for longer than StaleErasure: lost; started again below.
	}
	var keys []map[string]types.AttributeValue
	if err := s.partitionItems(ctx, member, []string{"s#", "w#"}, func(item map[string]types.AttributeValue) {
		keys = append(keys, keyOf(item))
	}); err != nil {
		return err
	}
	if err := s.deleteKeys(ctx, keys); err != nil {
		return fmt.Errorf("end the screens of %s: %w", kernel.Pseudonym(member), err)
	}
	put, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: MarshalErasure(member, at),
		ConditionExpression:       aws.String("attribute_not_exists(sk) OR #it = :done OR (#it = :pending AND #at < :stale)"),
		ExpressionAttributeNames:  map[string]string{"#it": "it", "#at": "at"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":done": str(kindErased), ":pending": str(kindErasure), ":stale": num(ms(at.Add(-viewing.StaleErasure)))},
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		record(ctx, false)
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return viewing.ErrErasurePending
		}
		return fmt.Errorf("write the erasure of %s: %w", kernel.Pseudonym(member), unavailable(err))
	}
	record(ctx, false, one(put.ConsumedCapacity)...)
	return nil
}

// EraseViewing implements viewing.HistoryStore: strongly consistent Queries
// of the member's resume points, rows, history and screens, BatchWriteItem
// deletes of what is older than the erasure, then the erasure item marked
// done (on the condition that it is this erasure).
func (s *Store) EraseViewing(ctx context.Context, member string, at time.Time) error {
	cut := ms(at)
	held, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(ViewingPartition(member), erasureSK), ConsistentRead: aws.Bool(true), ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
	if err != nil {
		record(ctx, true)
		return fmt.Errorf("read the erasure of %s: %w", kernel.Pseudonym(member), unavailable(err))
	}
	record(ctx, true, one(held.ConsumedCapacity)...)
	k, _ := held.Item["it"].(*types.AttributeValueMemberS)
	if n, _ := held.Item["at"].(*types.AttributeValueMemberN); k != nil && k.Value == kindErased && n != nil && n.Value == strconv.FormatInt(cut, 10) {
		return nil // carried out already (a record delivered again): what came after it stays
	}
	num64 := func(item map[string]types.AttributeValue, a string) (int64, bool) {
		n, _ := item[a].(*types.AttributeValueMemberN)
		if n == nil {
			return 0, false
		}
		v, err := strconv.ParseInt(n.Value, 10, 64)
		return v, err == nil
	}
	var keys []map[string]types.AttributeValue
	var kept []map[string]types.AttributeValue // resume points with a position reported since
	err = s.partitionItems(ctx, member, []string{"r#", "w#", "h#", "s#"}, func(item map[string]types.AttributeValue) {
		sk := item["sk"].(*types.AttributeValueMemberS).Value
		switch {
		case sk == erasureSK:
			return
		case strings.HasPrefix(sk, "h#"), strings.HasPrefix(sk, "s#"):
			// Only views started before the erasure.
			if v, ok := num64(item, "sa"); ok && v >= cut {
				return
			}
		case strings.HasPrefix(sk, "r#"):
			if v, ok := num64(item, "at"); ok && v >= cut {
				kept = append(kept, item)
				return
			}
		}
		keys = append(keys, keyOf(item))
	})
	if err != nil {
		return err
	}
	if err := s.deleteKeys(ctx, keys); err != nil {
		return fmt.Errorf("erase the viewing data of %s: %w", kernel.Pseudonym(member), err)
	}
	for _, item := range kept {
		// Keep the position; forget the time and the totals of views from
		// before the erasure.
		remove := []string{}
		for slot := range licensing.MaxScreens {
			if v, ok := num64(item, openAttr(slot, "s")); ok && v < cut {
				for _, f := range openFields {
					remove = append(remove, "#"+openAttr(slot, f))
				}
			}
		}
		update := "SET #w = :zero"
		if len(remove) > 0 {
			update += " REMOVE " + strings.Join(remove, ", ")
		}
		if _, _, err := s.update(ctx, keyOf(item), update, "attribute_exists(sk)", map[string]types.AttributeValue{":zero": num(0)}); err != nil {
			return fmt.Errorf("erase the viewing data of %s: %w", kernel.Pseudonym(member), err)
		}
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: key(ViewingPartition(member), erasureSK),
		UpdateExpression:          aws.String("SET #it = :done"),
		ConditionExpression:       aws.String("#at = :at"),
		ExpressionAttributeNames:  map[string]string{"#at": "at", "#it": "it"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":done": str(kindErased), ":at": num(cut)},
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		record(ctx, false)
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return nil // another erasure since: it is that one's to mark
		}
		return fmt.Errorf("mark the erasure of %s done: %w", kernel.Pseudonym(member), unavailable(err))
	}
	record(ctx, false, one(out.ConsumedCapacity)...)
	return nil
}

// Erasures implements viewing.HistoryStore with one eventually consistent
// BatchGetItem of the members' erasure items (more if over 100 members).
func (s *Store) Erasures(ctx context.Context, members []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	for len(members) > 0 {
		n := min(len(members), 100)
		keys := make([]map[string]types.AttributeValue, n)
		for i, m := range members[:n] {
			keys[i] = key(ViewingPartition(m), erasureSK)
		}
		err := s.batchGet(ctx, keys, false, func(item map[string]types.AttributeValue) error {
			pk, _ := item["pk"].(*types.AttributeValueMemberS)
			at, _ := item["at"].(*types.AttributeValueMemberN)
			if pk == nil || at == nil {
				return fmt.Errorf("erasure item without pk or at")
			}
			v, err := strconv.ParseInt(at.Value, 10, 64)
			if err != nil {
				return fmt.Errorf("erasure item %s: %w", pk.Value, err)
			}
			out[strings.TrimPrefix(pk.Value, "v#")] = fromMs(v)
			return nil
		})
		if err != nil {
			return nil, err
		}
		members = members[n:]
	}
	return out, nil
}

// ViewingMembers calls fn with every member that has a viewing history:
// one Scan of the table (history items only), a member once (a partition's
// items come together).
func (s *Store) ViewingMembers(ctx context.Context, fn func(member string) error) error {
	in := &dynamodb.ScanInput{
		TableName:                 &s.table,
		FilterExpression:          aws.String("begins_with(pk, :v) AND begins_with(sk, :h) AND #it = :k"),
		ProjectionExpression:      aws.String("pk"),
		ExpressionAttributeNames:  map[string]string{"#it": "it"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": str("v#"), ":h": str("h#"), ":k": str(kindHistory)},
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	}
	last := ""
	for {
		out, err := s.db.Scan(ctx, in)
		if err != nil {
			record(ctx, true)
			return fmt.Errorf("scan %s: %w", s.table, unavailable(err))
		}
		record(ctx, true, one(out.ConsumedCapacity)...)
		for _, it := range out.Items {
			pk, _ := it["pk"].(*types.AttributeValueMemberS)
			if pk == nil || pk.Value == last {
				continue
			}
			last = pk.Value
			if err := fn(strings.TrimPrefix(pk.Value, "v#")); err != nil {
				return err
			}
		}
		if out.LastEvaluatedKey == nil {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// ReplaceRows replaces a member's recently watched rows: a Query of the
// rows held, deletes of those of other profiles, a PutItem per row.
func (s *Store) ReplaceRows(ctx context.Context, member string, rows map[string]*viewing.Row) error {
	var stale []map[string]types.AttributeValue
	if err := s.partitionItems(ctx, member, []string{"w#"}, func(item map[string]types.AttributeValue) {
		sk := item["sk"].(*types.AttributeValueMemberS).Value
		for profile := range rows {
			if rowSK(profile) == sk {
				return
			}
		}
		stale = append(stale, keyOf(item))
	}); err != nil {
		return err
	}
	if err := s.deleteKeys(ctx, stale); err != nil {
		return err
	}
	for profile, r := range rows {
		item, err := rowItem(member, profile, r)
		if err != nil {
			return err
		}
		out, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
		if err != nil {
			record(ctx, false)
			return fmt.Errorf("write row: %w", unavailable(err))
		}
		record(ctx, false, one(out.ConsumedCapacity)...)
	}
	return nil
}

// ReplaceEngagement replaces every engagement count: a Scan for the items
// held and deletes of them all, then one PutItem per title and day with its
// totals on shard 0.
func (s *Store) ReplaceEngagement(ctx context.Context, counts map[string]map[string]viewing.Engagement) (int, error) {
	in := &dynamodb.ScanInput{
		TableName:                 &s.table,
		FilterExpression:          aws.String("#it = :k"),
		ProjectionExpression:      aws.String("pk, sk"),
		ExpressionAttributeNames:  map[string]string{"#it": "it"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": str(kindEngagement)},
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	}
	var held []map[string]types.AttributeValue
	for {
		out, err := s.db.Scan(ctx, in)
		if err != nil {
			record(ctx, true)
			return 0, fmt.Errorf("scan %s: %w", s.table, unavailable(err))
		}
		record(ctx, true, one(out.ConsumedCapacity)...)
		for _, it := range out.Items {
			held = append(held, keyOf(it))
		}
		if out.LastEvaluatedKey == nil {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	if err := s.deleteKeys(ctx, held); err != nil {
		return 0, err
	}
	for day, titles := range counts {
		for title, e := range titles {
			item := engagementKey(day, 0, title)
			item["it"], item["t"], item["n"], item["w"], item["c"] = str(kindEngagement), str(title), num(e.Views), num(e.WatchedMs), num(e.Completions)
			out, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
			if err != nil {
				record(ctx, false)
				return len(held), fmt.Errorf("write engagement: %w", unavailable(err))
			}
			record(ctx, false, one(out.ConsumedCapacity)...)
		}
	}
	return len(held), nil
}
