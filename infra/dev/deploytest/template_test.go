package deploytest

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/dlicense/dlicense/infra/httpapi"
)

// jwksRoute is the one route served without a token: DRM servers fetch the
// licence keys from it.
const jwksRoute = "GET /.well-known/jwks.json"

// expectedActions are the IAM actions each function may be granted, and no
// more: a new permission is a decision someone makes here, in review. For
// the stream function SAM also attaches the managed policy
// AWSLambdaDynamoDBExecutionRole to the role it generates (the four stream
// actions and logs, on Resource "*"), which no template property turns off;
// the template documents it, and what is listed here is what the function
// needs: the event log, its stream, and the on-failure queue.
var expectedActions = map[string][]string{
	"ApiFunction": {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem", "ssm:GetParameter",
		"states:DescribeExecution", "states:ListExecutions", "states:StartExecution"},
	"StreamsFunction": {
		"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DescribeStream", "dynamodb:GetItem", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams",
		"dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem", "sqs:SendMessage",
	},
	"JobsFunction": {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem"},
}

// deployment is what the checks read: the template and the Makefile.
type deployment struct {
	root     *yaml.Node // the template's top-level mapping
	makefile string
}

func parse(template, makefile string) (*deployment, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(template), &doc); err != nil {
		return nil, fmt.Errorf("template.yaml: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("template.yaml: not a mapping")
	}
	return &deployment{root: doc.Content[0], makefile: makefile}, nil
}

func readSources(t *testing.T) (template, makefile string) {
	t.Helper()
	tb, err := os.ReadFile("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mb, err := os.ReadFile("../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	return string(tb), string(mb)
}

func load(t *testing.T) *deployment {
	t.Helper()
	d, err := parse(readSources(t))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// get walks mapping keys; it returns nil when a key is missing.
func get(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}

// entries lists a mapping's keys and values in order.
func entries(n *yaml.Node) (keys []string, values []*yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
		values = append(values, n.Content[i+1])
	}
	return keys, values
}

// scalars reads a scalar or a sequence of scalars (IAM's Action and
// Resource take both).
func scalars(n *yaml.Node) []string {
	switch {
	case n == nil:
		return nil
	case n.Kind == yaml.ScalarNode:
		return []string{n.Value}
	case n.Kind == yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			out = append(out, scalars(c)...)
		}
		return out
	}
	return []string{"<" + n.Tag + " " + fmt.Sprint(n.Kind) + ">"}
}

// value is a scalar's text, "" when n is nil or not a scalar.
func value(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// resources lists the logical ids and definitions of resources of a type.
func (d *deployment) resources(typ string) (ids []string, defs []*yaml.Node) {
	keys, values := entries(get(d.root, "Resources"))
	for i, v := range values {
		if value(get(v, "Type")) == typ {
			ids, defs = append(ids, keys[i]), append(defs, v)
		}
	}
	return ids, defs
}

// route is one HttpApi event of a function.
type route struct {
	function, event string
	key             string // "METHOD /path"
	props           *yaml.Node
}

func (d *deployment) routes() []route {
	var out []route
	ids, fns := d.resources("AWS::Serverless::Function")
	for i, fn := range fns {
		names, evs := entries(get(fn, "Properties", "Events"))
		for j, ev := range evs {
			if value(get(ev, "Type")) != "HttpApi" {
				continue
			}
			p := get(ev, "Properties")
			key := strings.ToUpper(value(get(p, "Method"))) + " " + value(get(p, "Path"))
			out = append(out, route{function: ids[i], event: names[j], key: key, props: p})
		}
	}
	return out
}

// checkBuildTargets: sam build runs `make build-<LogicalId>` for functions
// built with the makefile method.
func checkBuildTargets(d *deployment) []string {
	var problems []string
	ids, fns := d.resources("AWS::Serverless::Function")
	if len(ids) == 0 {
		problems = append(problems, "the template has no AWS::Serverless::Function")
	}
	for i, fn := range fns {
		if value(get(fn, "Metadata", "BuildMethod")) != "makefile" {
			continue
		}
		target := regexp.MustCompile(`(?m)^build-` + regexp.QuoteMeta(ids[i]) + `\s*:`)
		if !target.MatchString(d.makefile) {
			problems = append(problems, fmt.Sprintf("%s: BuildMethod makefile, but the Makefile has no target build-%s", ids[i], ids[i]))
		}
	}
	return problems
}

// goArch maps Lambda architectures to GOARCH.
var goArch = map[string]string{"arm64": "arm64", "x86_64": "amd64"}

// checkArch: the bootstrap the Makefile builds runs on the architecture
// the template gives each function.
func checkArch(d *deployment) []string {
	m := regexp.MustCompile(`(?m)^LAMBDA_ARCH\s*:?=\s*(\S+)\s*$`).FindStringSubmatch(d.makefile)
	if m == nil {
		return []string{"the Makefile sets no LAMBDA_ARCH"}
	}
	var problems []string
	global := scalars(get(d.root, "Globals", "Function", "Architectures"))
	ids, fns := d.resources("AWS::Serverless::Function")
	for i, fn := range fns {
		archs := global
		if own := get(fn, "Properties", "Architectures"); own != nil {
			archs = scalars(own)
		}
		if archs == nil {
			archs = []string{"x86_64"} // Lambda's default
		}
		if len(archs) != 1 || goArch[archs[0]] != m[1] {
			problems = append(problems, fmt.Sprintf("%s: Architectures %v, but the Makefile builds GOARCH=%s", ids[i], archs, m[1]))
		}
	}
	return problems
}

// checkRoutes: the template routes exactly what the handler serves, each on
// an HttpApi of the template (an event without ApiId would make SAM create
// an implicit API, without the authorizer).
func checkRoutes(d *deployment, served []string) []string {
	var problems []string
	apis, _ := d.resources("AWS::Serverless::HttpApi")
	inTemplate := map[string]bool{}
	for _, r := range d.routes() {
		if inTemplate[r.key] {
			problems = append(problems, fmt.Sprintf("%s.%s: route %q is declared twice", r.function, r.event, r.key))
		}
		inTemplate[r.key] = true
		api := get(r.props, "ApiId")
		if api == nil || api.Tag != "!Ref" || !slices.Contains(apis, api.Value) {
			problems = append(problems, fmt.Sprintf("%s.%s: ApiId must be !Ref to an AWS::Serverless::HttpApi of the template", r.function, r.event))
		}
		if !slices.Contains(served, r.key) {
			problems = append(problems, fmt.Sprintf("%s.%s: the template routes %q, the handler does not serve it", r.function, r.event, r.key))
		}
	}
	for _, s := range served {
		if !inTemplate[s] {
			problems = append(problems, fmt.Sprintf("the handler serves %q, the template does not route it", s))
		}
	}
	return problems
}

// checkAuth: the public routes (httpapi.PublicRoutes(): the licence key set
// and the support console's files, which hold no data) need no token; every
// other route goes through its API's default JWT authorizer.
func checkAuth(d *deployment) []string {
	var problems []string
	ids, apis := d.resources("AWS::Serverless::HttpApi")
	defaults := map[string]string{}
	for i, api := range apis {
		auth := get(api, "Properties", "Auth")
		name := value(get(auth, "DefaultAuthorizer"))
		a := get(auth, "Authorizers", name)
		if name == "" || get(a, "JwtConfiguration") == nil || value(get(a, "IdentitySource")) != "$request.header.Authorization" {
			problems = append(problems, fmt.Sprintf("%s: DefaultAuthorizer must name a JWT authorizer reading the Authorization header", ids[i]))
			continue
		}
		defaults[ids[i]] = name
	}
	for _, r := range d.routes() {
		authorizer := value(get(r.props, "Auth", "Authorizer"))
		def := defaults[value(get(r.props, "ApiId"))]
		switch {
		case slices.Contains(httpapi.PublicRoutes(), r.key):
			if authorizer != "NONE" {
				problems = append(problems, fmt.Sprintf("%s.%s: %s must be public (Auth: Authorizer: NONE)", r.function, r.event, r.key))
			}
		case def == "":
			problems = append(problems, fmt.Sprintf("%s.%s: %s is not on an API with a JWT default authorizer", r.function, r.event, r.key))
		case authorizer != "" && authorizer != def:
			problems = append(problems, fmt.Sprintf("%s.%s: %s uses authorizer %s, want the default %s", r.function, r.event, r.key, authorizer, def))
		}
	}
	return problems
}

// checkActions: each function is granted exactly its expected actions,
// through inline statements only (SAM policy templates and managed policies
// hide what they allow), with no wildcard.
func checkActions(d *deployment) []string {
	var problems []string
	ids, fns := d.resources("AWS::Serverless::Function")
	for i, fn := range fns {
		want, ok := expectedActions[ids[i]]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: no expected IAM actions listed in this test", ids[i]))
			continue
		}
		var got []string
		policies := get(fn, "Properties", "Policies")
		if policies != nil && policies.Kind != yaml.SequenceNode {
			problems = append(problems, fmt.Sprintf("%s: Policies must be a list of inline policy documents", ids[i]))
			continue
		}
		if policies != nil {
			for _, p := range policies.Content {
				stmts := get(p, "Statement")
				if stmts == nil || stmts.Kind != yaml.SequenceNode {
					problems = append(problems, fmt.Sprintf("%s: policy at line %d is not an inline document with a Statement list", ids[i], p.Line))
					continue
				}
				for _, s := range stmts.Content {
					if value(get(s, "Effect")) != "Allow" || get(s, "NotAction") != nil || get(s, "NotResource") != nil {
						problems = append(problems, fmt.Sprintf("%s: statement at line %d must be a plain Allow of Action on Resource", ids[i], s.Line))
					}
					got = append(got, scalars(get(s, "Action"))...)
					if slices.Contains(scalars(get(s, "Resource")), "*") {
						problems = append(problems, fmt.Sprintf("%s: statement at line %d allows Resource \"*\"", ids[i], s.Line))
					}
				}
			}
		}
		for _, a := range got {
			if strings.Contains(a, "*") {
				problems = append(problems, fmt.Sprintf("%s: action %q has a wildcard", ids[i], a))
			}
		}
		slices.Sort(got)
		got = slices.Compact(got) // an action granted on two resources
		if !slices.Equal(got, want) {
			problems = append(problems, fmt.Sprintf("%s: actions %v, want exactly %v", ids[i], got, want))
		}
	}
	return problems
}

func report(t *testing.T, name string, problems []string) {
	t.Helper()
	for _, p := range problems {
		t.Errorf("%s: %s", name, p)
	}
}

func TestMakefileBuildsEveryFunction(t *testing.T) {
	report(t, "build targets", checkBuildTargets(load(t)))
}

func TestMakefileArchMatchesTemplate(t *testing.T) {
	report(t, "architecture", checkArch(load(t)))
}

func TestTemplateRoutesAreServedByTheHandler(t *testing.T) {
	if !slices.Contains(httpapi.Routes(), jwksRoute) {
		t.Fatalf("httpapi.Routes() = %v, want it to hold %q", httpapi.Routes(), jwksRoute)
	}
	report(t, "routes", checkRoutes(load(t), httpapi.Routes()))
}

func TestOnlyThePublicRoutesArePublic(t *testing.T) {
	report(t, "auth", checkAuth(load(t)))
}

func TestFunctionActionsAreExactlyTheExpectedOnes(t *testing.T) {
	report(t, "iam", checkActions(load(t)))
}

// TestChecksCatchBreakage breaks each invariant in a copy of the sources and
// expects its check to notice: a check that always passes protects nothing.
// A mutation that no longer applies means the template's layout changed:
// update the mutation with it.
func TestChecksCatchBreakage(t *testing.T) {
	template, makefile := readSources(t)
	routes := func(d *deployment) []string { return checkRoutes(d, httpapi.Routes()) }
	cases := []struct {
		name     string
		file     string // "template" or "makefile"
		old, new string // old "" leaves the sources as they are
		check    func(*deployment) []string
	}{
		{"missing build target", "makefile", "\nbuild-ApiFunction:", "\nbuild-Api:", checkBuildTargets},
		{"x86 Makefile", "makefile", "LAMBDA_ARCH := arm64", "LAMBDA_ARCH := amd64", checkArch},
		{"x86 template", "template", "Architectures: [arm64]", "Architectures: [x86_64]", checkArch},
		{"route the handler lacks", "template", "Path: /v1/devices/{device}/playback\n", "Path: /v1/devices/{device}/playbacks\n", routes},
		{"route the template lacks", "template", "", "", func(d *deployment) []string {
			return checkRoutes(d, append(slices.Clone(httpapi.Routes()), "GET /v1/members/me"))
		}},
		{"implicit API", "template", "ApiId: !Ref LicensingApi\n            Method: GET\n            Path: /.well-known/jwks.json", "Method: GET\n            Path: /.well-known/jwks.json", routes},
		{"key set behind the authorizer", "template", "Authorizer: NONE", "Authorizer: MemberJwt", checkAuth},
		{"public licence route", "template", "Path: /v1/devices/{device}/playback\n", "Path: /v1/devices/{device}/playback\n            Auth:\n              Authorizer: NONE\n", checkAuth},
		{"no default authorizer", "template", "DefaultAuthorizer: MemberJwt", "", checkAuth},
		{"wildcard action", "template", "- dynamodb:PutItem", "- dynamodb:*", checkActions},
		{"extra action", "template", "- dynamodb:PutItem", "- dynamodb:PutItem\n                - dynamodb:Scan", checkActions},
		{"missing action", "template", "- dynamodb:PutItem", "", checkActions},
		{"wildcard resource", "template", "- - !GetAtt LicensingTable.Arn", `- "*"`, checkActions},
		{"managed policy", "template", "Policies:\n", "Policies:\n        - AmazonDynamoDBFullAccess\n", checkActions},
		{"missing stream build target", "makefile", "\nbuild-StreamsFunction:", "\nbuild-Streams:", checkBuildTargets},
		{"stream wildcard action", "template", "- dynamodb:GetRecords", "- dynamodb:Get*", checkActions},
		{"stream extra action", "template", "- sqs:SendMessage", "- sqs:SendMessage\n                - sqs:DeleteMessage", checkActions},
		{"stream filter lets snapshots through", "template", `"it": {"S": ["event"]}`, `"it": {"S": ["event", "snapshot"]}`, checkStreamEvents},
		{"stream filter without item kind", "template", `, "dynamodb": {"NewImage": {"it": {"S": ["event"]}}}}`, "}", checkStreamEvents},
		{"stream filter on any item kind", "template", `"it": {"S": ["event"]}`, `"it": {"S": [{"exists": true}]}`, checkStreamEvents},
		{"missing viewing action", "template", "                - dynamodb:GetItem\n", "", checkActions},
		{"stream filter passes modifications", "template", `"eventName": ["INSERT"]`, `"eventName": ["INSERT", "MODIFY"]`, checkStreamEvents},
		{"stream filter passes screen removals", "template", `["INSERT", "MODIFY"]`, `["INSERT", "MODIFY", "REMOVE"]`, checkStreamEvents},
		{"stream filter passes resume points", "template", `"it": {"S": ["screen"]}`, `"it": {"S": ["screen", "resume"]}`, checkStreamEvents},
		{"stream filter without screens", "template", `"it": {"S": ["screen"]}`, `"it": {"S": ["event"]}`, checkStreamEvents},
		{"stream filter removed", "template", "FilterCriteria:", "FilterCriteriaDisabled:", checkStreamEvents},
		{"stream filter not JSON", "template", `"S": ["event"]}}}}'`, `"S": ["event"]}}}'`, checkStreamEvents},
		{"no partial batch responses", "template", "- ReportBatchItemFailures", "- ReportItemFailures", checkStreamEvents},
		{"records dropped after ten minutes", "template", "MaximumRecordAgeInSeconds: -1", "MaximumRecordAgeInSeconds: 540", checkStreamEvents},
		{"parallel shard pollers", "template", "ParallelizationFactor: 1", "ParallelizationFactor: 2", checkStreamEvents},
		{"hidden destination policy", "template", "OnFailure:\n", "OnFailure:\n                Type: SQS\n", checkStreamEvents},
		{"stream of another resource", "template", "              - !GetAtt LicensingTable.StreamArn\n            StartingPosition", "              - !Ref OtherStream\n            StartingPosition", checkStreamEvents},
		{"viewing stream of another resource", "template", "EventSourceArn: !If [CreatesGlobalTables, !GetAtt ViewingTable.StreamArn", "EventSourceArn: !If [CreatesGlobalTables, !GetAtt LogTable.StreamArn", checkStreamEvents},
		{"viewing stream mapped to another function", "template", "FunctionName: !Ref StreamsFunction", "FunctionName: !Ref ApiFunction", checkStreamEvents},
		{"viewing stream without partial batch responses", "template", "      FunctionResponseTypes:\n        - ReportBatchItemFailures", "      FunctionResponseTypes:\n        - Nothing", checkStreamEvents},
		{"no stream event", "template", "Type: DynamoDB", "Type: SQS", checkStreamEvents},
		{"cadence not from the parameter", "template", "SNAPSHOT_EVERY: !Ref SnapshotEvery", `SNAPSHOT_EVERY: "8"`, checkSnapshotEvery},
		{"stream function without a cadence", "template", "          SNAPSHOT_EVERY: !Ref SnapshotEvery\n", "", checkSnapshotEvery},
		{"cadence of a missing parameter", "template", "  SnapshotEvery:\n    Type: Number", "  SnapshotInterval:\n    Type: Number", checkSnapshotEvery},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpl, mk := template, makefile
			src := &tpl
			if c.file == "makefile" {
				src = &mk
			}
			if c.old != "" {
				if !strings.Contains(*src, c.old) {
					t.Fatalf("the %s no longer contains %q: update this mutation", c.file, c.old)
				}
				*src = strings.Replace(*src, c.old, c.new, 1)
			}
			d, err := parse(tpl, mk)
			if err != nil {
				t.Fatal(err)
			}
			if problems := c.check(d); len(problems) == 0 {
				t.Errorf("%s: the check found nothing wrong", c.name)
			} else {
				t.Logf("caught: %s", strings.Join(problems, "; "))
			}
		})
	}
}
