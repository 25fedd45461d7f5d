package faults

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Client returns a DynamoDB client for a local endpoint whose calls go
// through t. It is built like dynamo.NewClient builds one for a local
// endpoint (standard retryer, no client-side retry budget, static
// credentials, no response checksum check), with maxAttempts attempts per
// call (4 in production).
func Client(ctx context.Context, endpoint string, t *Transport, maxAttempts int) (*dynamodb.Client, error) {
	if maxAttempts < 1 {
		return nil, fmt.Errorf("faults client: maxAttempts %d, want at least 1", maxAttempts)
	}
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.MaxBackoff = 500 * time.Millisecond
				o.RateLimiter = ratelimit.None
			})
		}),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")),
	)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.DisableValidateResponseChecksum = true
		// Set here rather than in the config, which insists on a client it
		// can configure itself when a CA bundle is set.
		o.HTTPClient = &http.Client{Transport: t}
	}), nil
}
