// Package withdraw ends the licences of a withdrawn title across every
// member that holds it (jobs.Withdraw): the operator's command, which the
// scheduled run of due withdrawals also does on its own.
package withdraw

import (
	"context"
	"time"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/jobs"
)

// Run ends every licence of the withdrawn title that a member still holds,
// from where the last run of it stopped (jobs.Withdraw).
func Run(ctx context.Context, svc *licensing.Service, ws licensing.WithdrawalStore, hs licensing.HolderStore, title string, now time.Time, progress func(licensing.Withdrawal)) (licensing.Withdrawal, error) {
	return jobs.Withdraw(ctx, svc, ws, hs, title, now, progress)
}
