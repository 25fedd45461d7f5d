package dynamo

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The key layout: every item has a partition key "pk" and a sort key "sk",
// both strings, and its kind in "it". Partitions by prefix:
//
//	m#<member>               a member's log (Log): events e#<version>,
//	                         the snapshot e#~snapshot; beside them the
//	                         member's counted version c#counted (Counters)
//	                         and its refusals x#<time>#<random> (Refusals)
//	v#<member>               a member's viewing data: screens s#<slot> and
//	                         resume points r#<profile>#<title> (Views);
//	                         history entries h#<start>#<view>, the erasure
//	                         h#~erasure and rows w#<profile> (History)
//	c#<scope>#<shard>        a counter shard (Counters)
//	g#<day>#<shard>          a day's engagement, t#<title> (History)
//	th#<title>#<shard>       a title's holders, <member> (Holders)
//	wd                       the withdrawals, t#<title> (Withdrawals)
//
// Only this package knows it: the stream adapter reads records through
// Change.
const (
	logPrefix     = "m#"
	viewingPrefix = "v#"
)

// LogPartition is the partition of a member's log.
func LogPartition(member string) string { return logPrefix + member }

// ViewingPartition is the partition of a member's viewing data.
func ViewingPartition(member string) string { return viewingPrefix + member }

// memberOf is the member whose partition, of the kind prefix names, holds
// item.
func memberOf(item map[string]types.AttributeValue, prefix string) (string, bool) {
	pk, ok := strOf(item, "pk")
	if !ok {
		return "", false
	}
	return strings.CutPrefix(pk, prefix)
}
