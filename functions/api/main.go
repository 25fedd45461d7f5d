// Command api is the licensing HTTP API Lambda: configuration → DynamoDB
// store → service → handler → API Gateway v2 adapter.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/akrylysov/algnhsa"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/dlicense/dlicense/infra/setup"
)

func main() {
	slog.SetDefault(lambdacontext.NewLogger())
	cfg, err := setup.FromEnv()
	if err != nil {
		slog.Error("configuration", "error", err)
		os.Exit(1)
	}
	parts, err := setup.Build(context.Background(), cfg)
	if err != nil {
		slog.Error("start", "error", err)
		os.Exit(1)
	}
	lambda.Start(algnhsa.New(parts.Handler(cfg), &algnhsa.Options{RequestType: algnhsa.RequestTypeAPIGatewayV2}))
}
