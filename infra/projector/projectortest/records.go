// Package projectortest stands in for DynamoDB Streams before the stream
// function: it builds the records Lambda delivers for the table's writes
// (an event appended, a screen written, an erasure begun), and appends
// members' logs whose records a test hands to the function. Tests,
// benchmarks and the local runtime's in-process feed use it; no Lambda
// links it.
package projectortest

import (
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/domain/viewing"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/projector"
)

// InsertRecord builds the stream record DynamoDB Streams delivers for a newly
// appended event item (NEW_IMAGE), with the given sequence number.
func InsertRecord(stream string, e licensing.StoredEvent, seq string) (events.DynamoDBEventRecord, error) {
	item, err := dynamo.MarshalStoredEvent(stream, e)
	if err != nil {
		return events.DynamoDBEventRecord{}, err
	}
	return newImageRecord(item, "INSERT", fmt.Sprintf("%s-%d", stream, e.Version), e.At, seq)
}

// ScreenRecord builds the stream record DynamoDB Streams delivers for a
// write of a member's screen slot now holding v: an INSERT for the slot's
// first write, a MODIFY after.
func ScreenRecord(member string, v *viewing.View, insert bool, seq string) (events.DynamoDBEventRecord, error) {
	item, err := dynamo.MarshalScreen(member, v)
	if err != nil {
		return events.DynamoDBEventRecord{}, err
	}
	name := "MODIFY"
	if insert {
		name = "INSERT"
	}
	return newImageRecord(item, name, fmt.Sprintf("%s-%s-%d", member, v.ID, v.Seq), v.LastSeen, seq)
}

// ErasureRecord is the stream record DynamoDB Streams carries for the write
// of a pending erasure of a member's viewing data (an INSERT or, after an
// earlier erasure, a MODIFY: the function treats both alike).
func ErasureRecord(member string, at time.Time, seq string) (events.DynamoDBEventRecord, error) {
	return newImageRecord(dynamo.MarshalErasure(member, at), "MODIFY", fmt.Sprintf("%s-erasure-%d", member, at.UnixMilli()), at, seq)
}

func newImageRecord(item map[string]types.AttributeValue, name, id string, at time.Time, seq string) (events.DynamoDBEventRecord, error) {
	image, err := projector.FromSDK(item)
	if err != nil {
		return events.DynamoDBEventRecord{}, err
	}
	return events.DynamoDBEventRecord{
		AWSRegion: "local", EventID: id, EventName: name, EventSource: "aws:dynamodb", EventVersion: "1.1",
		Change: events.DynamoDBStreamRecord{
			ApproximateCreationDateTime: events.SecondsEpochTime{Time: at.Truncate(time.Second)},
			Keys:                        map[string]events.DynamoDBAttributeValue{"pk": image["pk"], "sk": image["sk"]},
			NewImage:                    image,
			SequenceNumber:              seq,
			StreamViewType:              "NEW_IMAGE",
		},
	}, nil
}
