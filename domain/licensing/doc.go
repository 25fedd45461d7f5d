// Package licensing is the domain of download licences: the policy (plans,
// studios, titles and their rules), the commands a device sends (acquire,
// renew, release, record offline playback), the events a member's log holds,
// the state folded from them, and the pure decision of each command against
// that state, with every rule that refuses it.
//
// The Service runs a command as load, decide, conditional append: the log
// (EventStore) is the only truth, and two writers that read the same
// version can never both append. Snapshots, counters, the title holders
// index and the withdrawals are ports the adapters implement. Time, ids and
// errors come from the kernel package; nothing here does I/O.
package licensing
