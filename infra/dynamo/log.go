package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/dlicense/dlicense/domain/licensing"
)

// ErrItemTooLarge reports an event or snapshot over DynamoDB's item limit.
// Nothing is written when it is returned.
var ErrItemTooLarge = errors.New("item larger than DynamoDB's 400 KB limit")

// ErrTooManyEvents reports an append of more events than one transaction holds.
var ErrTooManyEvents = fmt.Errorf("more than %d events in one append", MaxEventsPerAppend)

// DefaultFirstPage is the Limit of a load's first Query by default: the
// snapshot and the newest three events. The stream function writes a
// snapshot every 4 events (setup.DefaultSnapshotEvery), so at rest it lags
// the log by 0 to 3 events and one Query is the whole load; the events it
// covers that the page reads anyway are a few hundred bytes each, within
// the 4 KB a half read unit buys while the snapshot is small (docs/table.md).
// A snapshot lagging further (a burst the stream function has not caught up
// with) costs a second Query of exactly the events it lacks.
const DefaultFirstPage = 4

// MaxFirstPage bounds the first page: with snapshots rarer than this, a
// load reads the rest with a second Query.
const MaxFirstPage = 8

// SetFirstPage makes a load's first Query read the snapshot and n-1
// events: n is the stream function's snapshot cadence (events between
// snapshots), from 1 to MaxFirstPage (out of range: the default).
func (s *Log) SetFirstPage(n int) {
	if n < 1 || n > MaxFirstPage {
		n = DefaultFirstPage
	}
	s.firstPage = int32(n)
}

// Log is the members' event logs and their snapshots: one partition per
// member, one item per event, appended with conditional writes, and a
// snapshot item that sorts after every event so that a load is one Query.
type Log struct {
	t         *Table
	firstPage int32
}

var (
	_ licensing.EventStore    = (*Log)(nil)
	_ licensing.SnapshotStore = (*Log)(nil)
)

// NewLog returns the event logs kept in t.
func NewLog(t *Table) *Log { return &Log{t: t} }

// Load implements licensing.EventStore with a descending Query from the
// top of the member's partition limited to the first page (SetFirstPage):
// the snapshot and the newest events. When the snapshot covers the oldest
// of those, or the one before it, that is the whole load: one request,
// half a read unit (eventually consistent) while they fit in 4 KB. A
// snapshot that lags further costs a second Query bounded by versions: exactly the
// events between the snapshot and the newest, never an older one nor the
// rest of the partition. A stream without a usable snapshot (none, another
// state schema, unreadable, or one the log does not reach) is read to its
// start, page by page.
//
// Reads are eventually consistent unless opts.Consistent: a stale read
// costs at most a conflict on append, after which the service catches up.
func (s *Log) Load(ctx context.Context, stream string, opts licensing.LoadOptions) (licensing.Stream, error) {
	if opts.After > 0 {
		return s.loadAfter(ctx, stream, opts)
	}
	var limit int32
	if opts.SnapshotSchema != 0 {
		limit = s.firstPage
		if limit == 0 {
			limit = DefaultFirstPage
		}
	}
	items, more, err := s.events(ctx, stream, eventPrefix, "", limit, opts.Consistent)
	if err != nil {
		return licensing.Stream{}, err
	}
	var snap *licensing.Snapshot
	if len(items) > 0 && isSnapshot(items[0]) {
		if sn, err := unmarshalSnapshot(items[0]); err == nil && sn.Schema >= 1 && sn.Schema <= opts.SnapshotSchema && sn.Stream == stream {
			snap = &sn
		}
		items = items[1:]
	}
	stored := make([]licensing.StoredEvent, 0, len(items)) // newest first
	if stored, err = appendEvents(stream, stored, items); err != nil {
		return licensing.Stream{}, err
	}
	oldest := func() int64 {
		if len(stored) == 0 {
			return 1<<62 - 1
		}
		return stored[len(stored)-1].Version
	}
	// The snapshot is used only if the log reaches the version it covers
	// (the newest event is at or past it); then only the events after it
	// are kept, and those between it and the oldest read are read.
	if snap != nil && (len(stored) == 0 || stored[0].Version < snap.Version) {
		snap = nil
	}
	if snap != nil {
		if oldest() > snap.Version+1 && more {
			rest, _, err := s.events(ctx, stream, EventKey(snap.Version+1), EventKey(oldest()-1), 0, opts.Consistent)
			if err != nil {
				return licensing.Stream{}, err
			}
			if stored, err = appendEvents(stream, stored, rest); err != nil {
				return licensing.Stream{}, err
			}
		}
		stored = slices.DeleteFunc(stored, func(e licensing.StoredEvent) bool { return e.Version <= snap.Version })
	}
	if snap == nil && more && oldest() > 1 {
		// No usable snapshot: the whole log.
		rest, _, err := s.events(ctx, stream, EventKey(0), EventKey(oldest()-1), 0, opts.Consistent)
		if err != nil {
			return licensing.Stream{}, err
		}
		if stored, err = appendEvents(stream, stored, rest); err != nil {
			return licensing.Stream{}, err
		}
	}
	slices.Reverse(stored)
	res := licensing.Stream{Snapshot: snap}
	if len(stored) > 0 {
		res.Events = make([]licensing.Event, len(stored))
	}
	next := int64(1)
	if snap != nil {
		next = snap.Version + 1
	}
	for i, se := range stored {
		if se.Version != next {
			return licensing.Stream{}, fmt.Errorf("load %s: event v%d follows v%d: the log has a gap", stream, se.Version, next-1)
		}
		next++
		e, err := licensing.DecodeEvent(se)
		if err != nil {
			return licensing.Stream{}, fmt.Errorf("load %s: %w", stream, err)
		}
		res.Events[i] = e
	}
	return res, nil
}

// loadAfter reads the events after opts.After: one Query bounded by
// versions, for a holder of the state at that version.
func (s *Log) loadAfter(ctx context.Context, stream string, opts licensing.LoadOptions) (licensing.Stream, error) {
	events, err := s.eventsBetween(ctx, stream, opts.After+1, 1<<62-1, opts.Consistent)
	return licensing.Stream{Events: events}, err
}

// eventsBetween reads a stream's events from version from to version to
// (those there are), oldest first, with one Query bounded by versions; a
// gap in them is an error.
func (s *Log) eventsBetween(ctx context.Context, stream string, from, to int64, consistent bool) ([]licensing.Event, error) {
	items, _, err := s.events(ctx, stream, EventKey(from), EventKey(to), 0, consistent)
	if err != nil {
		return nil, err
	}
	stored, err := appendEvents(stream, nil, items)
	if err != nil {
		return nil, err
	}
	slices.Reverse(stored)
	var out []licensing.Event
	for i, se := range stored {
		if se.Version != from+int64(i) {
			return nil, fmt.Errorf("load %s from v%d: event v%d follows v%d: the log has a gap", stream, from, se.Version, from+int64(i)-1)
		}
		e, err := licensing.DecodeEvent(se)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", stream, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// events reads a member's items newest first, with sort keys from lo to hi
// (hi "" for begins_with(lo)), page after page; a limit reads one page of
// that many items. more reports that the partition holds older items than
// those returned (a limited page stopped early).
func (s *Log) events(ctx context.Context, stream, lo, hi string, limit int32, consistent bool) (items []map[string]types.AttributeValue, more bool, err error) {
	in := &dynamodb.QueryInput{
		TableName:              &s.t.name,
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: LogPartition(stream)},
			":lo": &types.AttributeValueMemberS{Value: lo}, ":hi": &types.AttributeValueMemberS{Value: hi},
		},
		ScanIndexForward:       aws.Bool(false),
		ConsistentRead:         aws.Bool(consistent),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	}
	if hi == "" {
		in.KeyConditionExpression = aws.String("pk = :pk AND begins_with(sk, :lo)")
		delete(in.ExpressionAttributeValues, ":hi")
	}
	if limit > 0 {
		in.Limit = aws.Int32(limit)
	}
	for {
		out, err := s.t.db.Query(ctx, in)
		if err != nil {
			record(ctx, true)
			return nil, false, fmt.Errorf("query %s: %w", stream, unavailable(err))
		}
		record(ctx, true, one(out.ConsumedCapacity)...)
		items = append(items, out.Items...)
		if out.LastEvaluatedKey == nil {
			return items, false, nil
		}
		if limit > 0 {
			return items, true, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// appendEvents adds older event items to stored (newest first).
func appendEvents(stream string, stored []licensing.StoredEvent, items []map[string]types.AttributeValue) ([]licensing.StoredEvent, error) {
	for _, av := range items {
		e, err := unmarshalEvent(av)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", stream, err)
		}
		stored = append(stored, e)
	}
	return stored, nil
}

func isSnapshot(av map[string]types.AttributeValue) bool {
	sk, _ := av["sk"].(*types.AttributeValueMemberS)
	return sk != nil && sk.Value == snapshotSK
}

// Append implements licensing.EventStore: one event is one conditional
// PutItem, several are one TransactWriteItems; each item is written only if
// its version does not exist yet.
func (s *Log) Append(ctx context.Context, stream string, expected int64, events []licensing.Event) error {
	stored := make([]licensing.StoredEvent, len(events))
	for i, e := range events {
		se, err := licensing.EncodeEvent(e)
		if err != nil {
			return fmt.Errorf("append to %s: %w", stream, err)
		}
		stored[i] = se
	}
	return s.AppendStored(ctx, stream, expected, stored)
}

// AppendStored appends events already in stored form, exactly like Append.
func (s *Log) AppendStored(ctx context.Context, stream string, expected int64, events []licensing.StoredEvent) error {
	if err := licensing.CheckAppend(stream, expected, events); err != nil {
		return err
	}
	if len(events) > MaxEventsPerAppend {
		return fmt.Errorf("append to %s: %w", stream, ErrTooManyEvents)
	}
	items := make([]map[string]types.AttributeValue, len(events))
	for i, e := range events {
		av, err := marshalEvent(stream, e)
		if err != nil {
			return fmt.Errorf("append to %s: %w", stream, err)
		}
		items[i] = av
	}
	if len(items) == 1 {
		return s.put(ctx, stream, expected, events[0], items[0])
	}
	return s.transact(ctx, stream, expected, events, items)
}

const notExists = "attribute_not_exists(pk)"

func (s *Log) put(ctx context.Context, stream string, expected int64, e licensing.StoredEvent, item map[string]types.AttributeValue) error {
	out, err := s.t.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           &s.t.name,
		Item:                                item,
		ConditionExpression:                 aws.String(notExists),
		ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		record(ctx, false, one(out.ConsumedCapacity)...)
		return nil
	}
	recordError(ctx, err, item)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		// The SDK may have retried a write that had landed: the item in the
		// way is then our own.
		if e.RequestID != "" && sameRequest(ccf.Item, e.RequestID) {
			return nil
		}
		return s.conflict(ctx, stream, expected)
	}
	var rwc *types.ReplicatedWriteConflictException
	if errors.As(err, &rwc) {
		// Multi-Region strong consistency: a write of the same version was
		// under way in another region. A lost race like any other: catch
		// up and decide again (if the other write failed, the version is
		// still free).
		return s.conflict(ctx, stream, expected)
	}
	return classify(stream, err)
}

func (s *Log) transact(ctx context.Context, stream string, expected int64, events []licensing.StoredEvent, items []map[string]types.AttributeValue) error {
	in := &dynamodb.TransactWriteItemsInput{ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal}
	for _, it := range items {
		in.TransactItems = append(in.TransactItems, types.TransactWriteItem{Put: &types.Put{
			TableName:                           &s.t.name,
			Item:                                it,
			ConditionExpression:                 aws.String(notExists),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}})
	}
	if id := events[0].RequestID; id != "" {
		// Makes the SDK's own retries of this call idempotent for 10 minutes.
		in.ClientRequestToken = aws.String(fmt.Sprintf("%.36s", id+"/"+EventKey(expected+1)))
	}
	out, err := s.t.db.TransactWriteItems(ctx, in)
	if err == nil {
		record(ctx, false, out.ConsumedCapacity...)
		return nil
	}
	recordError(ctx, err, items[0])
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		// Read the reasons item by item: a failed condition is a lost race,
		// TransactionConflict a concurrent transaction on the same items.
		for i, r := range tce.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "ConditionalCheckFailed":
				if i == 0 && sameRequest(r.Item, events[0].RequestID) {
					return nil // our own earlier attempt landed
				}
				return s.conflict(ctx, stream, expected)
			case "TransactionConflict":
				return s.conflict(ctx, stream, expected)
			case "ValidationError":
				return fmt.Errorf("append to %s: item %d refused: %s", stream, i, aws.ToString(r.Message))
			}
		}
	}
	return classify(stream, err)
}

// conflict builds the conflict error. It reads nothing: the loser of a race
// catches up anyway, so the stream's real version is not worth a request
// (Current -1).
func (s *Log) conflict(_ context.Context, stream string, expected int64) error {
	return &licensing.ConflictError{Stream: stream, Expected: expected, Current: -1}
}

func sameRequest(item map[string]types.AttributeValue, id string) bool {
	rq, _ := item["rq"].(*types.AttributeValueMemberS)
	return id != "" && rq != nil && rq.Value == id
}

// classify wraps a DynamoDB error, turning the item size refusal into
// ErrItemTooLarge.
func classify(stream string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "ValidationException" && strings.Contains(strings.ToLower(ae.ErrorMessage()), "item size") {
		return fmt.Errorf("append to %s: %w", stream, ErrItemTooLarge)
	}
	return fmt.Errorf("append to %s: %w", stream, unavailable(err))
}

// SaveSnapshot implements licensing.SnapshotStore: one PutItem, written only
// if the snapshot held is older, or of the same version and another state
// schema (a migration).
func (s *Log) SaveSnapshot(ctx context.Context, snap licensing.Snapshot) (bool, error) {
	if snap.Stream == "" || snap.Version < 1 {
		return false, fmt.Errorf("save snapshot of %q v%d: bad stream or version", snap.Stream, snap.Version)
	}
	item, err := marshalSnapshot(snap)
	if err != nil {
		return false, err
	}
	out, err := s.t.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 &s.t.name,
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR v < :v OR (v = :v AND ss <> :ss)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": item["v"], ":ss": item["ss"]},
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		recordError(ctx, err, item)
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return false, nil
		}
		return false, fmt.Errorf("save snapshot of %s v%d: %w", snap.Stream, snap.Version, classify(snap.Stream, err))
	}
	record(ctx, false, one(out.ConsumedCapacity)...)
	return true, nil
}

// Members calls fn with every member that has a log, by scanning for the
// first event of each stream (operators' tools only: a Scan reads the table).
// MembersOf calls fn with every member with at least one event in
// segment of total of a parallel Scan (Segment, TotalSegments), each once:
// the members a job's slice handles.
func (s *Log) MembersOf(ctx context.Context, segment, total int, fn func(member string) error) error {
	return s.t.scan(ctx, &dynamodb.ScanInput{
		Segment: aws.Int32(int32(segment)), TotalSegments: aws.Int32(int32(total)),
		FilterExpression:          aws.String("sk = :first"),
		ProjectionExpression:      aws.String("pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":first": str(EventKey(1))},
	}, func(item map[string]types.AttributeValue) error {
		if m, ok := memberOf(item, logPrefix); ok {
			return fn(m)
		}
		return nil
	})
}

func (s *Log) Members(ctx context.Context, fn func(member string) error) error {
	return s.t.scan(ctx, &dynamodb.ScanInput{
		FilterExpression:          aws.String("sk = :first"),
		ProjectionExpression:      aws.String("pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":first": str(EventKey(1))},
	}, func(item map[string]types.AttributeValue) error {
		if m, ok := memberOf(item, logPrefix); ok {
			return fn(m)
		}
		return nil
	})
}
