package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// Withdraw ends every licence of the withdrawn title that a member still
// holds (licensing.WithdrawTitle, TITLE_WITHDRAWN), from where the last run
// of it stopped: the holders come from the index the stream function keeps
// (no scan of the table), a page at a time, and the progress is saved
// after each page, so that a run stopped anywhere resumes there. svc must
// decide under the policy with the withdrawal. progress hears the
// withdrawal after each page. A title withdrawn from a later time is
// refused until then.
func Withdraw(ctx context.Context, svc *licensing.Service, ws licensing.WithdrawalStore, hs licensing.HolderStore, title string, now time.Time, progress func(licensing.Withdrawal)) (licensing.Withdrawal, error) {
	all, err := ws.Withdrawals(ctx)
	if err != nil {
		return licensing.Withdrawal{}, err
	}
	var w licensing.Withdrawal
	found := false
	for _, x := range all {
		if x.Title == title {
			w, found = x, true
		}
	}
	switch {
	case !found:
		return w, fmt.Errorf("title %s was not withdrawn (POST /v1/admin/titles/%s/withdrawal first)", title, title)
	case now.Before(w.From):
		return w, fmt.Errorf("title %s is withdrawn from %s: run this then", title, w.From.Format(time.RFC3339))
	case w.Done:
		return w, nil
	}
	return withdraw(ctx, svc, ws, hs, w, progress)
}

func withdraw(ctx context.Context, svc *licensing.Service, ws licensing.WithdrawalStore, hs licensing.HolderStore, w licensing.Withdrawal, progress func(licensing.Withdrawal)) (licensing.Withdrawal, error) {
	title := w.Title
	err := hs.Holders(ctx, title, w.Cursor, func(members []string, next string) error {
		for _, m := range members {
			res, err := svc.Execute(ctx, licensing.WithdrawTitle{Member: m, Title: title}, "")
			if err != nil {
				return fmt.Errorf("member %s: %w", kernel.Pseudonym(m), err)
			}
			w.Members++
			w.Ended += len(res.Licences)
			if len(res.Licences) == licensing.MaxReleasesPerCommand {
				// More than one command holds: the rest, now.
				more, err := svc.Execute(ctx, licensing.WithdrawTitle{Member: m, Title: title}, "")
				if err != nil {
					return fmt.Errorf("member %s: %w", kernel.Pseudonym(m), err)
				}
				w.Ended += len(more.Licences)
			}
		}
		w.Cursor = next
		if err := ws.SaveProgress(ctx, w); err != nil {
			return err
		}
		if progress != nil {
			progress(w)
		}
		return nil
	})
	if err != nil {
		return w, err
	}
	w.Done = true
	if err := ws.SaveProgress(ctx, w); err != nil {
		return w, err
	}
	return w, nil
}

// DueWithdrawals runs the withdrawals whose time has come and that have
// not gone through every holder yet, for at most budget in all: what the
// scheduled run does every minute (and make run), so that a withdrawal
// from a later time ends its licences then, with no operator. A run cut by
// the budget saved its progress page by page: the next goes on from there.
// It returns the withdrawals it worked on, as they were left.
func DueWithdrawals(ctx context.Context, svc *licensing.Service, ws licensing.WithdrawalStore, hs licensing.HolderStore, now time.Time, budget time.Duration) ([]licensing.Withdrawal, error) {
	all, err := ws.Withdrawals(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	out := []licensing.Withdrawal{}
	for _, w := range all {
		if w.Done || now.Before(w.From) {
			continue
		}
		left, err := withdraw(ctx, svc, ws, hs, w, nil)
		out = append(out, left)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return out, nil // the budget is spent: the next run goes on
		}
		if err != nil {
			return out, fmt.Errorf("withdrawal of %s: %w", w.Title, err)
		}
	}
	return out, nil
}
