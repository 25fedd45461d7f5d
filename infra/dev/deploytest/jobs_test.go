package deploytest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/dlicense/dlicense/infra/jobs"
)

// checkJobsStateMachine: the fleet-wide jobs' state machine is a
// Distributed Map over the segments whose every state is reached and
// names a state that exists; its substitutions name resources of the
// template; its batches carry what jobs.Batch reads (the items, and the
// job's fields in BatchInput), to the job function, with retries; and it
// tolerates a few failed slices.
func checkJobsStateMachine(d *deployment) []string {
	ids, defs := d.resources("AWS::Serverless::StateMachine")
	i := slices.Index(ids, "JobsStateMachine")
	if i < 0 {
		return []string{"no JobsStateMachine"}
	}
	props := get(defs[i], "Properties")
	var problems []string
	resources, _ := entries(get(d.root, "Resources"))
	subs, subValues := entries(get(props, "DefinitionSubstitutions"))
	for j, v := range subValues {
		target, _, _ := strings.Cut(v.Value, ".")
		if !slices.Contains(resources, target) {
			problems = append(problems, fmt.Sprintf("substitution %s names %q, not a resource of the template", subs[j], v.Value))
		}
	}
	var def map[string]any
	raw, err := yamlToJSON(get(props, "Definition"))
	if err == nil {
		err = json.Unmarshal(raw, &def)
	}
	if err != nil {
		return append(problems, fmt.Sprintf("Definition: %v", err))
	}
	for _, m := range regexp.MustCompile(`\$\{(\w+)\}`).FindAllStringSubmatch(string(raw), -1) {
		if !slices.Contains(subs, m[1]) {
			problems = append(problems, fmt.Sprintf("Definition uses ${%s}, which DefinitionSubstitutions lacks", m[1]))
		}
	}
	problems = append(problems, checkStates("", def)...)
	slicesState, _ := def["States"].(map[string]any)["Slices"].(map[string]any)
	proc, _ := slicesState["ItemProcessor"].(map[string]any)
	cfg, _ := proc["ProcessorConfig"].(map[string]any)
	if slicesState == nil || cfg["Mode"] != "DISTRIBUTED" {
		problems = append(problems, "Slices must be a Map in DISTRIBUTED mode")
	}
	if _, ok := slicesState["ToleratedFailurePercentage"]; !ok {
		problems = append(problems, "Slices must tolerate a few failed slices (ToleratedFailurePercentage)")
	}
	batch, _ := slicesState["ItemBatcher"].(map[string]any)["BatchInput"].(map[string]any)
	var fields []string
	for k := range batch {
		fields = append(fields, strings.TrimSuffix(k, ".$"))
	}
	slices.Sort(fields)
	var want []string
	for _, f := range reflect.VisibleFields(reflect.TypeFor[jobs.BatchInput]()) {
		want = append(want, strings.Split(f.Tag.Get("json"), ",")[0])
	}
	slices.Sort(want)
	if !slices.Equal(fields, want) {
		problems = append(problems, fmt.Sprintf("the batches carry %v, jobs.BatchInput reads %v", fields, want))
	}
	slice, _ := proc["States"].(map[string]any)["Slice"].(map[string]any)
	params, _ := slice["Parameters"].(map[string]any)
	if params["FunctionName"] != "${JobsFunctionArn}" || params["Payload.$"] != "$" || slice["Retry"] == nil {
		problems = append(problems, "Slice must hand the whole batch ($) to ${JobsFunctionArn}, with retries")
	}
	return problems
}

// checkStates checks a States machine: StartAt and every Next name a
// state, and every state is reached.
func checkStates(where string, m map[string]any) []string {
	states, _ := m["States"].(map[string]any)
	start, _ := m["StartAt"].(string)
	if states[start] == nil {
		return []string{fmt.Sprintf("%sStartAt %q names no state", where, start)}
	}
	var problems []string
	reached := map[string]bool{start: true}
	for name, s := range states {
		st, _ := s.(map[string]any)
		next, hasNext := st["Next"].(string)
		if hasNext && states[next] == nil {
			problems = append(problems, fmt.Sprintf("%s%s: Next %q names no state", where, name, next))
		}
		reached[next] = true
		if !hasNext && st["End"] != true {
			problems = append(problems, fmt.Sprintf("%s%s: neither Next nor End", where, name))
		}
		if p, ok := st["ItemProcessor"].(map[string]any); ok {
			problems = append(problems, checkStates(where+name+".", p)...)
		}
	}
	for name := range states {
		if !reached[name] {
			problems = append(problems, fmt.Sprintf("%s%s is never reached", where, name))
		}
	}
	return problems
}

// yamlToJSON renders a YAML node as JSON.
func yamlToJSON(n *yaml.Node) ([]byte, error) {
	if n == nil {
		return nil, fmt.Errorf("missing")
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func TestJobsStateMachine(t *testing.T) {
	report(t, "jobs state machine", checkJobsStateMachine(load(t)))
}

// TestTheJobsCheckCatchesBreakage: the check finds a Next to nowhere, a
// batch missing a field, an inline Map and an unknown substitution.
func TestTheJobsCheckCatchesBreakage(t *testing.T) {
	template, makefile := readSources(t)
	for _, c := range []struct{ name, old, new string }{
		{"next to nowhere", "            Next: Reduce\n", "            Next: Reduced\n"},
		{"batch without the policy", "                policy.$: $.policy\n            ItemProcessor:", "            ItemProcessor:"},
		{"inline map", "                Mode: DISTRIBUTED", "                Mode: INLINE"},
		{"unknown substitution", "                    FunctionName: ${JobsFunctionArn}", "                    FunctionName: ${SlicesFunctionArn}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(template, c.old) {
				t.Fatalf("the template no longer contains %q: update this mutation", c.old)
			}
			d, err := parse(strings.Replace(template, c.old, c.new, 1), makefile)
			if err != nil {
				t.Fatal(err)
			}
			if len(checkJobsStateMachine(d)) == 0 {
				t.Errorf("%s: the check found nothing wrong", c.name)
			}
		})
	}
}
