package dynamo

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/licensing"
)

// Item kinds, in attribute "it". The stream function's filter passes only
// events, so it never sees snapshots or its own writes.
const (
	kindEvent    = "event"
	kindSnapshot = "snapshot"
)

// Keys: one partition per member; events sort by zero-padded version and the
// snapshot sorts after all of them ('~' follows every digit).
const (
	eventPrefix = "e#"
	snapshotSK  = "e#~snapshot"
	// MaxItemBytes is DynamoDB's item size limit.
	MaxItemBytes = 400 * 1024
	// MaxEventsPerAppend is DynamoDB's limit on items in one transaction.
	MaxEventsPerAppend = 100
)

// EventKey is the sort key of an event version.
func EventKey(version int64) string { return fmt.Sprintf("%s%020d", eventPrefix, version) }

// eventItem is an event as stored. The payload stays JSON text in the
// schema it was written with: upcasters work on that text, and one string
// attribute costs fewer bytes than a map of attributes.
type eventItem struct {
	PK            string `dynamodbav:"pk"`
	SK            string `dynamodbav:"sk"`
	Kind          string `dynamodbav:"it"`
	Version       int64  `dynamodbav:"v"`
	Type          string `dynamodbav:"t"`
	Schema        int    `dynamodbav:"s"`
	At            string `dynamodbav:"at"`
	PolicyVersion string `dynamodbav:"pv,omitempty"`
	Key           string `dynamodbav:"k,omitempty"`
	Fingerprint   string `dynamodbav:"f,omitempty"`
	RequestID     string `dynamodbav:"rq,omitempty"`
	Data          string `dynamodbav:"d"`
}

// snapshotItem is the latest snapshot of a stream, its state compressed.
type snapshotItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	Kind   string `dynamodbav:"it"`
	Stream string `dynamodbav:"m"`
	// Version is the last event the snapshot covers; Schema the state schema.
	Version int64  `dynamodbav:"v"`
	Schema  int    `dynamodbav:"ss"`
	Data    []byte `dynamodbav:"d"`
	// Codec is "deflate" or "none".
	Codec string `dynamodbav:"z"`
}

// MarshalStoredEvent is the item an event is stored as; the embedded store's
// stream feed uses it to build the same records DynamoDB Streams carries.
func MarshalStoredEvent(stream string, e licensing.StoredEvent) (map[string]types.AttributeValue, error) {
	return marshalEvent(stream, e)
}

func marshalEvent(stream string, e licensing.StoredEvent) (map[string]types.AttributeValue, error) {
	it := eventItem{
		PK: LogPartition(stream), SK: EventKey(e.Version), Kind: kindEvent, Version: e.Version,
		Type: string(e.Type), Schema: e.Schema, At: e.At.UTC().Format(time.RFC3339Nano),
		PolicyVersion: e.PolicyVersion, Key: e.Key, Fingerprint: e.Fingerprint, RequestID: e.RequestID,
		Data: string(e.Data),
	}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return nil, fmt.Errorf("marshal %s v%d: %w", stream, e.Version, err)
	}
	if n := itemSize(av); n > MaxItemBytes {
		return nil, fmt.Errorf("%w: event %s v%d is %d bytes", ErrItemTooLarge, e.Type, e.Version, n)
	}
	return av, nil
}

func unmarshalEvent(av map[string]types.AttributeValue) (licensing.StoredEvent, error) {
	var it eventItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return licensing.StoredEvent{}, fmt.Errorf("unmarshal event item: %w", err)
	}
	at, err := time.Parse(time.RFC3339Nano, it.At)
	if err != nil {
		return licensing.StoredEvent{}, fmt.Errorf("event %s: bad time %q", it.SK, it.At)
	}
	if want := EventKey(it.Version); it.SK != want {
		return licensing.StoredEvent{}, fmt.Errorf("event %s holds version %d", it.SK, it.Version)
	}
	return licensing.StoredEvent{
		Version: it.Version, Type: licensing.EventType(it.Type), Schema: it.Schema, At: at.UTC(),
		PolicyVersion: it.PolicyVersion, Key: it.Key, Fingerprint: it.Fingerprint, RequestID: it.RequestID,
		Data: []byte(it.Data),
	}, nil
}

// UnmarshalStoredEvent reads an event item, as a stream record's new image
// carries it, into its stored form. ok is false for items that are not
// events (snapshots, counters).
func UnmarshalStoredEvent(av map[string]types.AttributeValue) (e licensing.StoredEvent, ok bool, err error) {
	if k, _ := av["it"].(*types.AttributeValueMemberS); k == nil || k.Value != kindEvent {
		return e, false, nil
	}
	e, err = unmarshalEvent(av)
	return e, err == nil, err
}

const maxSnapshotBytes = 16 << 20 // decompressed

// marshalSnapshot stores a snapshot's data compressed with DEFLATE, or as
// it is when that is no smaller (the compact encoding often is not).
func marshalSnapshot(s licensing.Snapshot) (map[string]types.AttributeValue, error) {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(s.Data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	data, codec := buf.Bytes(), "deflate"
	if len(data) >= len(s.Data) {
		data, codec = s.Data, "none"
	}
	av, err := attributevalue.MarshalMap(snapshotItem{
		PK: LogPartition(s.Stream), SK: snapshotSK, Kind: kindSnapshot, Stream: s.Stream,
		Version: s.Version, Schema: s.Schema, Data: data, Codec: codec,
	})
	if err != nil {
		return nil, fmt.Errorf("marshal snapshot of %s v%d: %w", s.Stream, s.Version, err)
	}
	if n := itemSize(av); n > MaxItemBytes {
		return nil, fmt.Errorf("%w: snapshot of %s v%d is %d bytes compressed", ErrItemTooLarge, s.Stream, s.Version, n)
	}
	return av, nil
}

func unmarshalSnapshot(av map[string]types.AttributeValue) (licensing.Snapshot, error) {
	var it snapshotItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return licensing.Snapshot{}, fmt.Errorf("unmarshal snapshot item: %w", err)
	}
	data := it.Data
	switch it.Codec {
	case "none":
	case "deflate":
		var err error
		data, err = io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(it.Data)), maxSnapshotBytes+1))
		if err != nil || len(data) > maxSnapshotBytes {
			return licensing.Snapshot{}, fmt.Errorf("snapshot of %s v%d: cannot decompress", it.Stream, it.Version)
		}
	default:
		return licensing.Snapshot{}, fmt.Errorf("snapshot of %s: unknown codec %q", it.Stream, it.Codec)
	}
	return licensing.Snapshot{Stream: it.Stream, Version: it.Version, Schema: it.Schema, Data: data}, nil
}

// itemSize is the size DynamoDB counts for an item: attribute names plus
// values (numbers counted by their digits, a safe over-estimate).
func itemSize(av map[string]types.AttributeValue) int {
	n := 0
	for name, v := range av {
		n += len(name)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			n += len(v.Value)
		case *types.AttributeValueMemberN:
			n += len(v.Value)/2 + 2
		case *types.AttributeValueMemberB:
			n += len(v.Value)
		default:
			n += 100 // no other types are written
		}
	}
	return n
}

func versionOf(sk string) (int64, bool) {
	if len(sk) != len(eventPrefix)+20 || sk[:len(eventPrefix)] != eventPrefix {
		return 0, false
	}
	v, err := strconv.ParseInt(sk[len(eventPrefix):], 10, 64)
	return v, err == nil
}
