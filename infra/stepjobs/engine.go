// Package stepjobs is the job engine in AWS: a fleet-wide job is an
// execution of the template's JobsStateMachine (a Distributed Map over the
// segments, infra/jobs's handler in the job function), named by the job's
// id, followed by its status and the slices it has written.
package stepjobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/infra/jobs"
)

// API is the part of the Step Functions client the engine uses.
type API interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, opts ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	ListExecutions(ctx context.Context, in *sfn.ListExecutionsInput, opts ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error)
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, opts ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

// Engine runs jobs on the state machine StateMachine (its ARN).
type Engine struct {
	SFN          API
	StateMachine string
	Results      jobs.Results
}

var _ jobs.Engine = (*Engine)(nil)

// input is the state machine's input.
type input struct {
	Job            string          `json:"job"`
	Kind           string          `json:"kind"`
	Total          int             `json:"total"`
	MaxConcurrency int             `json:"max_concurrency"`
	Policy         json.RawMessage `json:"policy"`
}

// Start implements jobs.Engine: one ListExecutions of those running (a job
// of the same kind refuses it), then StartExecution named id.
func (e *Engine) Start(ctx context.Context, id string, r jobs.Request) error {
	p := sfn.NewListExecutionsPaginator(e.SFN, &sfn.ListExecutionsInput{StateMachineArn: aws.String(e.StateMachine), StatusFilter: types.ExecutionStatusRunning})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return kernel.Unavailable("the job engine did not answer; retry shortly", err)
		}
		for _, x := range out.Executions {
			if strings.HasPrefix(aws.ToString(x.Name), r.Kind+"-") {
				return kernel.Errorf(kernel.KindConflict, jobs.CodeJobRunning, "a %s job is running (%s)", r.Kind, aws.ToString(x.Name))
			}
		}
	}
	policy := r.Policy
	if len(policy) == 0 {
		policy = json.RawMessage("null")
	}
	b, err := json.Marshal(input{Job: id, Kind: r.Kind, Total: r.Segments, MaxConcurrency: r.MaxConcurrency, Policy: policy})
	if err != nil {
		return err
	}
	if _, err := e.SFN.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(e.StateMachine), Name: aws.String(id), Input: aws.String(string(b))}); err != nil {
		return kernel.Unavailable("the job engine did not start the job; retry shortly", err)
	}
	return nil
}

// Status implements jobs.Engine: one DescribeExecution, and the slices the
// job has written (one Query).
func (e *Engine) Status(ctx context.Context, id string) (jobs.Status, error) {
	arn, err := executionArn(e.StateMachine, id)
	if err != nil {
		return jobs.Status{}, err
	}
	out, err := e.SFN.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	var missing *types.ExecutionDoesNotExist
	if errors.As(err, &missing) {
		return jobs.Status{}, kernel.Errorf(kernel.KindNotFound, jobs.CodeJobNotFound, "no such job")
	}
	if err != nil {
		return jobs.Status{}, kernel.Unavailable("the job engine did not answer; retry shortly", err)
	}
	var in input
	json.Unmarshal([]byte(aws.ToString(out.Input)), &in)
	st := jobs.Status{ID: id, Kind: in.Kind, Segments: in.Total, Started: aws.ToTime(out.StartDate).UTC()}
	switch out.Status {
	case types.ExecutionStatusRunning, types.ExecutionStatusPendingRedrive:
		st.State = jobs.StateRunning
	case types.ExecutionStatusSucceeded:
		st.State = jobs.StateSucceeded
	default:
		st.State = jobs.StateFailed
	}
	if out.StopDate != nil {
		t := out.StopDate.UTC()
		st.Ended = &t
	}
	if err := jobs.Progress(ctx, e.Results, &st); err != nil {
		return jobs.Status{}, err
	}
	if st.State == jobs.StateSucceeded {
		var res jobs.BatchResult
		if json.Unmarshal([]byte(aws.ToString(out.Output)), &res) == nil {
			st.Summary = res.Summary
		}
	}
	return st, nil
}

// executionArn is the ARN of the execution named id of a state machine:
// arn:…:stateMachine:<name> becomes arn:…:execution:<name>:<id>.
func executionArn(stateMachine, id string) (string, error) {
	const sm = ":stateMachine:"
	i := strings.Index(stateMachine, sm)
	if i < 0 || !kernel.ValidID(id) {
		return "", kernel.Errorf(kernel.KindNotFound, jobs.CodeJobNotFound, "no such job")
	}
	return fmt.Sprintf("%s:execution:%s:%s", stateMachine[:i], stateMachine[i+len(sm):], id), nil
}
