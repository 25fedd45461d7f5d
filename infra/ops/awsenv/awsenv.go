// Package awsenv gives the operator commands the AWS credentials and region
// of the machine they run on: the SDK's shared configuration (environment,
// profiles, SSO, roles), which the Lambdas do without (dynamo.AWSConfig).
package awsenv

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/dlicense/dlicense/infra/dynamo"
)

// Resolve returns c with the credentials and region of the shared
// configuration (AWS_PROFILE and the rest), the region c names, if any,
// first. A local endpoint (DynamoDB Local) keeps its static credentials.
func Resolve(ctx context.Context, c dynamo.Config) (dynamo.Config, error) {
	if c.Endpoint != "" || c.Credentials != nil {
		return c, nil
	}
	var opts []func(*config.LoadOptions) error
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return c, fmt.Errorf("aws config: %w", err)
	}
	c.Region, c.Credentials = cfg.Region, cfg.Credentials
	return c, nil
}
