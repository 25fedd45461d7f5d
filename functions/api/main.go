// Command api is the HTTP API Lambda (licensing and viewing), wired by
// setup: configuration → DynamoDB stores → services → handler → API
// Gateway (HTTP API) adapter.
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
	app, err := setup.Build(context.Background(), cfg)
	if err != nil {
		slog.Error("start", "error", err)
		os.Exit(1)
	}
	lambda.Start(algnhsa.New(app.Handler(), &algnhsa.Options{RequestType: algnhsa.RequestTypeAPIGatewayV2}))
}
