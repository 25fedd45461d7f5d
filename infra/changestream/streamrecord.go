package changestream

import (
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/dlicense/dlicense/infra/projector"
)

// EventRecord converts a DynamoDB Streams record to the record Lambda
// delivers for it, streamArn being its eventSourceARN. On error the record
// holds what could be read.
func EventRecord(r types.Record, streamArn string) (events.DynamoDBEventRecord, error) {
	out := events.DynamoDBEventRecord{
		AWSRegion: aws.ToString(r.AwsRegion), EventID: aws.ToString(r.EventID), EventName: string(r.EventName),
		EventSource: aws.ToString(r.EventSource), EventVersion: aws.ToString(r.EventVersion), EventSourceArn: streamArn,
	}
	if out.EventSource == "" {
		out.EventSource = "aws:dynamodb"
	}
	if r.UserIdentity != nil {
		out.UserIdentity = &events.DynamoDBUserIdentity{Type: aws.ToString(r.UserIdentity.Type), PrincipalID: aws.ToString(r.UserIdentity.PrincipalId)}
	}
	d := r.Dynamodb
	if d == nil {
		return out, fmt.Errorf("record %s has no change", out.EventID)
	}
	out.Change = events.DynamoDBStreamRecord{
		SequenceNumber: aws.ToString(d.SequenceNumber), SizeBytes: aws.ToInt64(d.SizeBytes), StreamViewType: string(d.StreamViewType),
	}
	if d.ApproximateCreationDateTime != nil {
		out.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: *d.ApproximateCreationDateTime}
	}
	var err error
	if out.Change.Keys, err = fromStreams(d.Keys); err != nil {
		return out, fmt.Errorf("record %s keys: %w", out.Change.SequenceNumber, err)
	}
	if out.Change.NewImage, err = fromStreams(d.NewImage); err != nil {
		return out, fmt.Errorf("record %s new image: %w", out.Change.SequenceNumber, err)
	}
	if out.Change.OldImage, err = fromStreams(d.OldImage); err != nil {
		return out, fmt.Errorf("record %s old image: %w", out.Change.SequenceNumber, err)
	}
	return out, nil
}

func fromStreams(image map[string]types.AttributeValue) (map[string]events.DynamoDBAttributeValue, error) {
	if image == nil {
		return nil, nil
	}
	item, err := attributevalue.FromDynamoDBStreamsMap(image)
	if err != nil {
		return nil, err
	}
	return projector.FromSDK(item)
}
