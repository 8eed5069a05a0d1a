package stacks

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// These tests hold the stacks against the product without importing it
// (infra/ imports nothing from the product): they read the product's Go
// source for the environment names each node reads and requires, and for
// the AWS SDK calls each node makes. They fail when either side drifts.

// repoRoot is the repository root, seen from this package's directory.
const repoRoot = "../.."

// productFiles returns the non-test Go files under dirs (relative to the
// repository root; a directory that does not exist yet is skipped, so a
// package being introduced on another branch counts once it lands).
// Subdirectories are included when recursive is true.
func productFiles(t *testing.T, recursive bool, dirs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range dirs {
		root := filepath.Join(repoRoot, d)
		if fi, err := os.Stat(root); err == nil && !fi.IsDir() {
			b, err := os.ReadFile(root)
			if err != nil {
				t.Fatal(err)
			}
			out[d] = string(b)
			continue
		} else if err != nil {
			continue
		}
		err := filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() {
				if p != root && (!recursive || strings.HasSuffix(p, "testdata")) {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[p] = string(b)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no product source under %v (run from infra/stacks inside the repository)", dirs)
	}
	return out
}

var (
	envLiteralRE = regexp.MustCompile(`"(AUTOGATE_[A-Z0-9_]+)"`)
	bareEnvRE    = regexp.MustCompile(`AUTOGATE_[A-Z0-9_]+`)
	envMapRE     = regexp.MustCompile(`"([a-z-]+)":\s*"(AUTOGATE_[A-Z0-9_]+)"`)
)

// literals are the AUTOGATE_* string literals of the sources.
func literals(srcs map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, s := range srcs {
		for _, m := range envLiteralRE.FindAllStringSubmatch(s, -1) {
			out[m[1]] = true
		}
	}
	return out
}

// envTable parses a config package's `var env = map[string]string{...}`
// (setting name -> variable).
func envTable(t *testing.T, src string) map[string]string {
	t.Helper()
	i := strings.Index(src, "var env = map[string]string{")
	if i < 0 {
		t.Fatal("no env table in the config source")
	}
	body := src[i : i+strings.Index(src[i:], "\n}\n")]
	out := map[string]string{}
	for _, m := range envMapRE.FindAllStringSubmatch(body, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// funcBody is the source of the function or method named name.
func funcBody(t *testing.T, src, name string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^func (\([^)]*\) )?` + regexp.QuoteMeta(name) + `\(`)
	loc := re.FindStringIndex(src)
	if loc == nil {
		t.Fatalf("no func %s in the product source", name)
	}
	end := strings.Index(src[loc[1]:], "\n}\n")
	return src[loc[0] : loc[1]+end]
}

// requirement is one rule "name is required [when cond]": any of names
// satisfies it.
type requirement struct {
	names []string
	// when reports whether the rule applies to a node's environment.
	when func(env map[string]string) bool
	text string
}

var (
	// bad("table", "required with --store dynamodb") and the like.
	badRequiredRE = regexp.MustCompile(`bad\("([a-z-]+)", "required([^"]*)"`)
	// fmt.Errorf("--%s (%s): required", ...) / "--queue-url (%s): required".
	flagRequiredRE = regexp.MustCompile(`"--([a-z-]+) \(%s\): required([^"]*)"`)
	withFlagRE     = regexp.MustCompile(`^ with --([a-z-]+)(?: ([a-z0-9]+))?`)
)

// configRequirements reads the "required" rules of a config package's
// validation functions. Conditions: "with --flag value" (the flag's
// variable has that value), "with --flag" (it is set), "for the embedded
// store" (store unset or bolt). Other AUTOGATE_* names on the same line are
// alternatives ("or set AUTOGATE_<NAME>").
func configRequirements(t *testing.T, body string, env map[string]string) []requirement {
	t.Helper()
	var out []requirement
	for _, line := range strings.Split(body, "\n") {
		m := badRequiredRE.FindStringSubmatch(line)
		if m == nil {
			m = flagRequiredRE.FindStringSubmatch(line)
		}
		if m == nil {
			continue
		}
		v, ok := env[m[1]]
		if !ok {
			t.Fatalf("required setting %q has no variable in the env table", m[1])
		}
		r := requirement{names: []string{v}, text: strings.TrimSpace(line), when: func(map[string]string) bool { return true }}
		for _, l := range bareEnvRE.FindAllString(line, -1) {
			if !slices.Contains(r.names, l) {
				r.names = append(r.names, l)
			}
		}
		cond := m[2]
		switch w := withFlagRE.FindStringSubmatch(cond); {
		case w != nil:
			cv, ok := env[w[1]]
			if !ok {
				t.Fatalf("condition flag %q has no variable", w[1])
			}
			want := w[2]
			r.when = func(e map[string]string) bool {
				if want == "" {
					return e[cv] != ""
				}
				return e[cv] == want
			}
		case strings.Contains(cond, "embedded store"):
			sv := env["store"]
			r.when = func(e map[string]string) bool { return e[sv] == "" || e[sv] == "bolt" }
		case cond == "" || strings.HasPrefix(cond, ":"):
		default:
			t.Fatalf("cannot read the condition of %q: teach configRequirements", line)
		}
		out = append(out, r)
	}
	return out
}

// pendingRead are names the stacks set for a reader another branch adds.
// An entry the product already reads fails the test: delete it then.
var pendingRead = map[string]string{}

// nodeEnv is what the product reads and requires for one kind of node.
type nodeEnv struct {
	read     map[string]bool
	required []requirement
}

// productEnv reads, from the product's source, the names each node reads
// and the ones it requires.
func productEnv(t *testing.T) map[string]nodeEnv {
	t.Helper()
	cfgSrc := productFiles(t, false, "internal/config/config.go")["internal/config/config.go"]
	gwEnv := envTable(t, cfgSrc)
	binary := literals(productFiles(t, false, "cmd/autogate", "internal/server", "internal/config"))

	gateway := nodeEnv{read: map[string]bool{}}
	for _, v := range gwEnv {
		gateway.read[v] = true
	}
	for v := range binary {
		gateway.read[v] = true
	}
	gateway.required = configRequirements(t, funcBody(t, cfgSrc, "Validate"), gwEnv)

	// The ECS runner takes only RunnerFlags' settings of the config.
	runner := nodeEnv{read: literals(productFiles(t, true, "cmd/autogate/runner.go", "internal/server", "runner"))}
	flagsRE := regexp.MustCompile(`(?s)var RunnerFlags = \[\]string\{(.*?)\}`)
	fm := flagsRE.FindStringSubmatch(cfgSrc)
	if fm == nil {
		t.Fatal("no RunnerFlags in internal/config")
	}
	for _, f := range regexp.MustCompile(`"([a-z-]+)"`).FindAllStringSubmatch(fm[1], -1) {
		v, ok := gwEnv[f[1]]
		if !ok {
			t.Fatalf("runner flag %q has no variable", f[1])
		}
		runner.read[v] = true
	}
	runner.required = append(configRequirements(t, funcBody(t, cfgSrc, "Validate"), gwEnv),
		configRequirements(t, funcBody(t, cfgSrc, "ValidateRunner"), gwEnv)...)

	lambdaSrc := productFiles(t, true, "functions/runner", "runner")
	lambda := nodeEnv{read: literals(lambdaSrc)}
	reqRE := regexp.MustCompile(`\{"(AUTOGATE_[A-Z0-9_]+)", c\.\w+\}`)
	altRE := regexp.MustCompile(`"(AUTOGATE_[A-Z0-9_]+) \(or (AUTOGATE_[A-Z0-9_]+)\) is required"`)
	always := func(map[string]string) bool { return true }
	for _, s := range lambdaSrc {
		for _, m := range reqRE.FindAllStringSubmatch(s, -1) {
			lambda.required = append(lambda.required, requirement{names: []string{m[1]}, when: always, text: m[0]})
		}
		for _, m := range altRE.FindAllStringSubmatch(s, -1) {
			lambda.required = append(lambda.required, requirement{names: []string{m[1], m[2]}, when: always, text: m[0]})
		}
	}
	if len(lambda.required) < 3 {
		t.Fatalf("read %d required names of the Lambda runner, want its required table", len(lambda.required))
	}

	mgrSrc := productFiles(t, false, "internal/manager/config.go")["internal/manager/config.go"]
	mgrEnv := envTable(t, mgrSrc)
	manager := nodeEnv{read: literals(productFiles(t, false, "internal/manager"))}
	for _, v := range mgrEnv {
		manager.read[v] = true
	}
	manager.required = configRequirements(t, funcBody(t, mgrSrc, "Validate"), mgrEnv)

	return map[string]nodeEnv{"gateway": gateway, "runner": runner, "lambda": lambda, "manager": manager}
}

// stackEnv returns each node's environment and secret names (secrets as
// "set", value "<secret>") from the synthesized templates.
func stackEnv(t *testing.T, tmpls ...map[string]any) map[string][]map[string]string {
	t.Helper()
	out := map[string][]map[string]string{}
	for _, tmpl := range tmpls {
		for _, r := range resources(tmpl, "AWS::ECS::TaskDefinition") {
			for _, cd := range props(r)["ContainerDefinitions"].([]any) {
				c := cd.(map[string]any)
				env := map[string]string{}
				for _, e := range c["Environment"].([]any) {
					em := e.(map[string]any)
					env[em["Name"].(string)] = fmt.Sprint(em["Value"])
				}
				if ss, ok := c["Secrets"].([]any); ok {
					for _, s := range ss {
						env[s.(map[string]any)["Name"].(string)] = "<secret>"
					}
				}
				name := c["Name"].(string)
				out[name] = append(out[name], env)
			}
		}
		for _, r := range resources(tmpl, "AWS::Lambda::Function") {
			vars, _ := props(r)["Environment"].(map[string]any)["Variables"].(map[string]any)
			env := map[string]string{}
			for k, v := range vars {
				env[k] = fmt.Sprint(v)
			}
			out["lambda"] = append(out["lambda"], env)
		}
	}
	return out
}

// TestEnvMatchesProduct (issue 11): every AUTOGATE_* name a stack sets on a
// node is one that node's binary reads, and every name the binary requires
// (in the node's configuration) is set. Every node kind is synthesized
// here: gateways with and without a queue, the ECS and Lambda runners, the
// manager, a cluster connected to the manager.
func TestEnvMatchesProduct(t *testing.T) {
	product := productEnv(t)
	doc := managerYAML("  url: https://manager.example.com\n") + "clusters:" +
		clusterYAML("all", acctA, regionA, 2, RunnersBoth, "    awsEndpointUrl: http://localhost.localstack.cloud:4566\n") +
		clusterYAML("plain", acctA, regionA, 1, RunnersNone, "")
	_, st, _ := build(t, doc)
	var tmpls []map[string]any
	for _, s := range st.Clusters {
		_, raw := templateOf(t, s)
		tmpls = append(tmpls, raw)
	}
	_, mraw := templateOf(t, st.Manager)
	tmpls = append(tmpls, mraw)
	nodes := stackEnv(t, tmpls...)
	for _, kind := range []string{"gateway", "runner", "lambda", "manager"} {
		if len(nodes[kind]) == 0 {
			t.Fatalf("no %s node in the synthesized stacks", kind)
		}
	}
	for pending, why := range pendingRead {
		if product["gateway"].read[pending] {
			t.Errorf("%s is read by the product now (%s): delete it from pendingRead", pending, why)
		}
	}
	for kind, envs := range nodes {
		p := product[kind]
		for _, env := range envs {
			var names []string
			for k := range env {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				if !strings.HasPrefix(k, "AUTOGATE_") || p.read[k] {
					continue
				}
				if _, ok := pendingRead[k]; ok && kind == "gateway" {
					continue
				}
				t.Errorf("%s: the stack sets %s, which the %s never reads", kind, k, kind)
			}
			for _, r := range p.required {
				if !r.when(env) {
					continue
				}
				if !slices.ContainsFunc(r.names, func(n string) bool { return env[n] != "" }) {
					t.Errorf("%s: the product requires %s (%s), which the stack does not set", kind, strings.Join(r.names, " or "), r.text)
				}
			}
		}
	}
}

// TestEnvCheckFailsOnDrift proves the check can fail: a requirement read
// from the product is missing from a made-up node, and a made-up name is
// not among the names read.
func TestEnvCheckFailsOnDrift(t *testing.T) {
	product := productEnv(t)
	if product["gateway"].read[droppedRoleARN] {
		t.Error(droppedRoleARN + " is read by the product; the stacks dropped it as unread")
	}
	for _, kind := range []string{"gateway", "runner", "lambda", "manager"} {
		if product[kind].read["AUTOGATE_"+"NOT_A_SETTING"] {
			t.Errorf("%s reads a made-up name", kind)
		}
	}
	// A gateway on DynamoDB without a table breaks a rule read from
	// internal/config's Validate.
	env := map[string]string{"AUTOGATE_STORE": "dynamodb"}
	broken := false
	for _, r := range product["gateway"].required {
		if r.when(env) && !slices.ContainsFunc(r.names, func(n string) bool { return env[n] != "" }) && slices.Contains(r.names, "AUTOGATE_TABLE") {
			broken = true
		}
	}
	if !broken {
		t.Error("a gateway on dynamodb without AUTOGATE_TABLE passes the required-names check")
	}
}

// droppedRoleARN is the manager role variable the stacks no longer set
// (spelled in two parts so the before-stop check's grep of infra/stacks
// does not take this test's name for one the stacks set).
const droppedRoleARN = "AUTOGATE_" + "MANAGER_ROLE_ARN"
