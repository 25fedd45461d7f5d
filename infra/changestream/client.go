package changestream

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/dlicense/dlicense/infra/dynamo"
)

// NewClient returns a DynamoDB Streams client for the table of c, set up
// as dynamo.NewClient sets up the table's client: a few quick retries, each
// within the attempt timeout, and for a local endpoint, static credentials
// and that endpoint.
func NewClient(ctx context.Context, c dynamo.Config) (*dynamodbstreams.Client, error) {
	cfg, err := dynamo.AWSConfig(ctx, c)
	if err != nil {
		return nil, err
	}
	return dynamodbstreams.NewFromConfig(cfg, func(o *dynamodbstreams.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		if c.AttemptTimeout > 0 {
			o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(c.AttemptTimeout)
		}
	}), nil
}

// TableDescriber is the part of the DynamoDB client LatestStreamArn uses.
type TableDescriber interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// LatestStreamArn returns the ARN of a table's current stream.
func LatestStreamArn(ctx context.Context, db TableDescriber, table string) (string, error) {
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return "", fmt.Errorf("describe table %s: %w", table, err)
	}
	if out.Table == nil || aws.ToString(out.Table.LatestStreamArn) == "" {
		return "", errors.New("table " + table + " has no stream")
	}
	return aws.ToString(out.Table.LatestStreamArn), nil
}
