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
	// Audit is the operators' audit trail (in the viewing table: every
	// region's, with a TTL).
	Audit *Audit
	// JobResults keep the fleet-wide jobs' slices and summaries.
	JobResults *JobResults
}

// OneTable returns every store over the one table called name: the
// layout of a service in one region. Each store keeps only its own items.
func OneTable(db API, name string) Stores {
	return Layout(db, Tables{Log: name})
}

// Tables names the tables of the stores; Viewing and Regional, if empty,
// are the Log table. In several regions (docs/regions.md):
//   - Log holds the members' event logs, their snapshots and the
//     withdrawals: one table whose conditional writes hold in every region
//     (multi-Region strong consistency; single-item writes only, no TTL);
//   - Viewing holds the screens, the erasure requests, the refusals and the
//     audit trail: one
//     table written in every region (multi-Region eventual consistency);
//   - Regional holds what each region's stream function builds from the
//     two tables' streams: counters, title holders, resume points, history,
//     rows, engagement; one table in each region, never replicated.
type Tables struct {
	Log, Viewing, Regional string
}

// Layout returns every store over the tables named.
func Layout(db API, names Tables) Stores {
	log := NewTable(db, names.Log)
	viewing, regional := log, log
	if names.Viewing != "" && names.Viewing != names.Log {
		viewing = NewTable(db, names.Viewing)
	}
	switch names.Regional {
	case "", names.Log:
	case names.Viewing:
		regional = viewing
	default:
		regional = NewTable(db, names.Regional)
	}
	events, views := NewLog(log), NewViews(viewing, regional)
	return Stores{
		Log: events, Views: views, History: NewHistory(regional, viewing, views),
		Counters: NewCounters(regional, events), Holders: NewHolders(regional),
		Withdrawals: NewWithdrawals(log), Refusals: NewRefusals(viewing), Audit: NewAudit(viewing),
		JobResults: NewJobResults(regional),
	}
}
