package invoke

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Local names what a local run stands in for a deployed stack's values.
type Local struct {
	// Table is the table's name (what !Ref LicensingTable gives).
	Table string
	// StackName, Region and AccountID stand for the pseudo parameters.
	StackName, Region, AccountID string
}

// TemplateEnv is the environment the template gives function, as a stack
// in one region with every parameter at its default gets it: !Ref of a
// parameter is its default, of the table local.Table; !If of the regions
// layout takes its one-region branch; !Sub is substituted; a variable set
// to AWS::NoValue is left out.
func TemplateEnv(path, function string, local Local) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Parameters map[string]struct {
			Default string `yaml:"Default"`
		} `yaml:"Parameters"`
		Globals struct {
			Function struct {
				Environment struct {
					Variables map[string]yaml.Node `yaml:"Variables"`
				} `yaml:"Environment"`
			} `yaml:"Function"`
		} `yaml:"Globals"`
		Resources map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				Environment struct {
					Variables map[string]yaml.Node `yaml:"Variables"`
				} `yaml:"Environment"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	fn, ok := doc.Resources[function]
	if !ok || fn.Type != "AWS::Serverless::Function" {
		return nil, fmt.Errorf("%s: no function %s", path, function)
	}
	ref := func(name string) (string, bool, error) {
		switch name {
		case "AWS::NoValue":
			return "", false, nil
		case "AWS::StackName":
			return local.StackName, true, nil
		case "AWS::Region":
			return local.Region, true, nil
		case "AWS::AccountId":
			return local.AccountID, true, nil
		case "AWS::Partition":
			return "aws", true, nil
		case "LicensingTable":
			return local.Table, true, nil
		}
		if p, ok := doc.Parameters[name]; ok {
			return p.Default, true, nil
		}
		return "", false, fmt.Errorf("!Ref %s: neither a parameter nor the table", name)
	}
	sub := regexp.MustCompile(`\$\{([A-Za-z0-9:]+)(\.[A-Za-z]+)?\}`)
	var value func(n *yaml.Node) (string, bool, error)
	value = func(n *yaml.Node) (string, bool, error) {
		switch n.Tag {
		case "!Ref":
			return ref(n.Value)
		case "!Sub":
			var err error
			out := sub.ReplaceAllStringFunc(n.Value, func(m string) string {
				name := sub.FindStringSubmatch(m)[1]
				v, ok, rerr := ref(name)
				if rerr != nil || !ok {
					if err == nil {
						err = fmt.Errorf("!Sub %q: %s", n.Value, name)
					}
				}
				return v
			})
			return out, err == nil, err
		case "!If":
			if len(n.Content) != 3 || n.Content[0].Value != "InRegions" {
				return "", false, fmt.Errorf("!If on %q: only InRegions is resolved locally", n.Content[0].Value)
			}
			return value(n.Content[2])
		}
		if n.Kind != yaml.ScalarNode {
			return "", false, fmt.Errorf("a value of kind %d", n.Kind)
		}
		return n.Value, true, nil
	}
	env := map[string]string{}
	for _, vars := range []map[string]yaml.Node{doc.Globals.Function.Environment.Variables, fn.Properties.Environment.Variables} {
		for k, n := range vars {
			v, ok, err := value(&n)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", function, k, err)
			}
			if ok {
				env[k] = v
			} else {
				delete(env, k)
			}
		}
	}
	return env, nil
}

// Environ is env as KEY=value lines, sorted, with the process's PATH.
func Environ(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// ForLocal is the function's template environment made to run here: on
// DynamoDB Local at endpoint, signing with keys (SIGNING_KEYS, instead of
// the SSM parameter), without the jobs' state machine (none runs here).
func ForLocal(env map[string]string, endpoint, keys, region string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	delete(out, "SIGNING_KEYS_PARAMETER")
	delete(out, "JOBS_STATE_MACHINE_ARN")
	out["DYNAMODB_ENDPOINT"] = endpoint
	out["AWS_REGION"] = region
	out["AWS_ACCESS_KEY_ID"], out["AWS_SECRET_ACCESS_KEY"] = "local", "local"
	if _, api := env["SIGNING_KEYS_PARAMETER"]; api {
		out["SIGNING_KEYS"] = keys
	}
	return out
}

// Names are the sorted keys of env (for printing it).
func Names(env map[string]string) string {
	var ks []string
	for k := range env {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, " ")
}
