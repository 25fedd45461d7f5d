package streams

import (
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dynamo"
)

// InsertRecord builds the stream record DynamoDB Streams delivers for a newly
// appended event item (NEW_IMAGE), with the given sequence number.
func InsertRecord(stream string, e licensing.StoredEvent, seq string) (events.DynamoDBEventRecord, error) {
	item, err := dynamo.MarshalStoredEvent(stream, e)
	if err != nil {
		return events.DynamoDBEventRecord{}, err
	}
	image, err := FromSDK(item)
	if err != nil {
		return events.DynamoDBEventRecord{}, err
	}
	return events.DynamoDBEventRecord{
		AWSRegion: "local", EventID: fmt.Sprintf("%s-%d", stream, e.Version), EventName: "INSERT",
		EventSource: "aws:dynamodb", EventVersion: "1.1",
		Change: events.DynamoDBStreamRecord{
			ApproximateCreationDateTime: events.SecondsEpochTime{Time: e.At.Truncate(time.Second)},
			Keys:                        map[string]events.DynamoDBAttributeValue{"pk": image["pk"], "sk": image["sk"]},
			NewImage:                    image,
			SequenceNumber:              seq,
			StreamViewType:              "NEW_IMAGE",
		},
	}, nil
}
