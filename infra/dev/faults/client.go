package faults

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dlicense/dlicense/infra/dynamo"
)

// Client returns the store's DynamoDB client (dynamo.NewClient) for a local
// endpoint, with its calls going through t and maxAttempts attempts per
// call (4 in production).
func Client(ctx context.Context, endpoint string, t *Transport, maxAttempts int) (*dynamodb.Client, error) {
	if maxAttempts < 1 {
		return nil, fmt.Errorf("faults client: maxAttempts %d, want at least 1", maxAttempts)
	}
	return dynamo.NewClient(ctx, dynamo.Config{Endpoint: endpoint, MaxAttempts: maxAttempts}, func(o *dynamodb.Options) {
		// Set here rather than in the config, which insists on a client it
		// can configure itself when a CA bundle is set.
		o.HTTPClient = &http.Client{Transport: t}
	})
}
