// Package awsenv gives the operator commands the AWS credentials and region
// of the machine they run on: the SDK's shared configuration (environment,
// profiles, SSO, roles), which the Lambdas do without (dynamo.AWSConfig).
package awsenv

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	creds, region, err := Credentials(ctx, c.Region)
	if err != nil {
		return c, err
	}
	c.Region, c.Credentials = region, creds
	return c, nil
}

// Credentials are the shared configuration's credentials and region (the
// region given, if any, first).
func Credentials(ctx context.Context, region string) (aws.CredentialsProvider, string, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("aws config: %w", err)
	}
	return cfg.Credentials, cfg.Region, nil
}
