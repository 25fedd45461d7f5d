package dynamo

// Stores are the stores of every port.
type Stores struct {
	Log         *Log
	Views       *Views
	History     *History
	Counters    *Counters
	Holders     *Holders
	Withdrawals *Withdrawals
	Refusals    *Refusals
}

// OneTable returns every store over the one table called name: the
// template's layout today. Each store keeps only its own items, so a later
// layout can give them tables of their own.
func OneTable(db API, name string) Stores {
	t := NewTable(db, name)
	log, views := NewLog(t), NewViews(t)
	return Stores{
		Log: log, Views: views, History: NewHistory(t, views),
		Counters: NewCounters(t, log), Holders: NewHolders(t),
		Withdrawals: NewWithdrawals(t), Refusals: NewRefusals(t),
	}
}
