#!/usr/bin/env bash
# Lints the deployable infrastructure; every check must be clean (no error, warning or
# informational finding). Runs all checks, then exits non-zero if any of them failed.
#
#   1. cfn-lint --include-checks I infra/template.yaml (informational rules too)
#   2. sam validate --lint --template infra/template.yaml
#   3. asl-validator on infra/statemachine.asl.json, with ${...} substitutions filled in
#   4. the ASL stays within what the local interpreter runs (no Parallel/Map, ...)
#   5. policy scan: the template through the SAM translator (scripts/sam-transform.py), then
#      checkov's rules and runbridge's own (infra/policy/) over that CloudFormation
#      (scripts/policy-scan.py): least-privilege IAM, encryption at rest, TLS-only bucket policy,
#      public access blocked, log retention, failure destinations of asynchronous invocations,
#      alarms on dead-letter queues; every suppression with its reason
#
# Needs the tools from scripts/install-tools.sh (.venv/, .venv-policy/ and node_modules/).
# Works offline.

set -Euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TEMPLATE="infra/template.yaml"
ASL="infra/statemachine.asl.json"

export PATH="$ROOT/.venv/bin:$ROOT/node_modules/.bin:$PATH"
export SAM_CLI_TELEMETRY=0
# sam's translator wants a region for pseudo parameters; any region will do for validation.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}"

for tool in cfn-lint sam asl-validator node; do
    command -v "$tool" >/dev/null 2>&1 || { echo "lint-infra: '$tool' not found; run: bash scripts/install-tools.sh" >&2; exit 2; }
done
CHECKOV_PYTHON="$ROOT/.venv-policy/bin/python"
[[ -x "$ROOT/.venv-policy/bin/checkov" ]] || { echo "lint-infra: .venv-policy/bin/checkov not found; run: bash scripts/install-tools.sh" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

failed=()
check() {
    local name="$1"; shift
    printf '\n== %s\n$ %s\n' "$name" "$*"
    local out rc
    out="$("$@" 2>&1)"; rc=$?
    [[ -n "$out" ]] && printf '%s\n' "$out"
    if [[ $rc -ne 0 ]]; then
        printf -- '-- %s: FAILED (exit %s)\n' "$name" "$rc"
        failed+=("$name")
    else
        printf -- '-- %s: clean\n' "$name"
    fi
}

# 1. cfn-lint exits non-zero on errors (2), warnings (4) and informational findings (8);
#    informational rules (I...) are opt-in, so ask for them too.
check "cfn-lint" cfn-lint --include-checks I -- "$TEMPLATE"

# 2. sam validate --lint: the SAM transform plus sam's own cfn-lint pass.
check "sam validate --lint" sam validate --lint --template "$TEMPLATE"

# 3. asl-validator: fill every DefinitionSubstitutions placeholder with a well-formed ARN of the
#    right kind, and refuse to validate if any ${...} is left over (a placeholder the template
#    does not provide would otherwise slip through).
substituted="$tmp/statemachine.asl.json"
subst() {
    node - "$ASL" "$substituted" <<'NODE'
const fs = require("fs");
const [src, dst] = process.argv.slice(2);
const arn = (name) => `arn:aws:lambda:us-east-1:123456789012:function:runbridge-${name.replace(/FunctionArn$/, "").toLowerCase()}`;
const known = { PollFunctionArn: arn("PollFunctionArn"), CollectFunctionArn: arn("CollectFunctionArn") };
let text = fs.readFileSync(src, "utf8");
const unknown = [];
text = text.replace(/\$\{([A-Za-z0-9_]+)\}/g, (m, name) => {
  if (name in known) return known[name];
  unknown.push(name);
  return m;
});
if (unknown.length) {
  console.error(`unknown substitution(s) in ${src}: ${[...new Set(unknown)].join(", ")}`);
  process.exit(1);
}
JSON.parse(text); // fail on invalid JSON with a clear message
fs.writeFileSync(dst, text);
console.log(`substituted ${Object.keys(known).join(", ")} -> ${dst}`);
NODE
}
check "asl substitutions" subst
if [[ -f "$substituted" ]]; then
    check "asl-validator" asl-validator --json-path "$substituted"
else
    failed+=("asl-validator (not run)")
fi

# 4. What asl-validator does not know: the CLI runs this same file with its own interpreter,
#    which has no Parallel/Map; Tasks use the plain Lambda ARN form (the function's return value
#    is the state's result); asl-validator's schema accepts any JitterStrategy string.
local_subset() {
    node - "$ASL" <<'NODE'
const fs = require("fs");
const src = process.argv[2];
const asl = JSON.parse(fs.readFileSync(src, "utf8"));
const supported = new Set(["Task", "Wait", "Choice", "Pass", "Succeed", "Fail"]);
const problems = [];
if (!Number.isInteger(asl.TimeoutSeconds)) problems.push("top-level TimeoutSeconds is missing");
for (const [name, st] of Object.entries(asl.States || {})) {
  if (!supported.has(st.Type)) problems.push(`${name}: type ${st.Type} is not run by the local interpreter`);
  // A Task names one of the stack's functions: as its Resource (plain Lambda ARN form), or as
  // the FunctionName of the Lambda integration (its callback form parks the execution).
  const fn = /^\$\{[A-Za-z0-9]+FunctionArn\}$/;
  const integration = /^arn:aws:states:::lambda:invoke(\.waitForTaskToken)?$/;
  if (st.Type === "Task" && !fn.test(st.Resource)) {
    if (!integration.test(st.Resource))
      problems.push(`${name}: Resource ${st.Resource} is neither a \${...FunctionArn} substitution nor the Lambda integration`);
    else if (!fn.test((st.Parameters || {}).FunctionName || ""))
      problems.push(`${name}: the Lambda integration's FunctionName is not a \${...FunctionArn} substitution`);
  }
  for (const r of st.Retry || [])
    if (r.JitterStrategy !== undefined && !["FULL", "NONE"].includes(r.JitterStrategy))
      problems.push(`${name}: JitterStrategy ${r.JitterStrategy} is neither FULL nor NONE`);
}
if (problems.length) { console.error(problems.join("\n")); process.exit(1); }
console.log(`${Object.keys(asl.States).length} states, all of types the local interpreter runs`);
NODE
}
check "asl local-runner subset" local_subset

# 5. The policy scan runs on what CloudFormation creates: the SAM resources expanded (the state
#    machine's generated role, the trigger's EventInvokeConfig and event source mapping).
transformed="$tmp/template.json"
check "sam transform" "$ROOT/.venv/bin/python" scripts/sam-transform.py --out "$transformed"
if [[ -f "$transformed" ]]; then
    check "policy scan (checkov)" "$CHECKOV_PYTHON" scripts/policy-scan.py "$transformed"
else
    failed+=("policy scan (not run)")
fi

echo
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "lint-infra: FAILED: ${failed[*]}"
    exit 1
fi
echo "lint-infra: all clean (cfn-lint, sam validate --lint, asl-validator, asl local-runner subset, policy scan)"
