"""runbridge's policy scan: checkov (its maintained rules plus infra/policy/) over the
SAM-transformed template and over infra/policy/violations.json, in one run.

    .venv-policy/bin/python scripts/policy-scan.py TRANSFORMED_TEMPLATE.json

Passes when the template fails no check, every suppression in it has a written reason, and every
resource of the violations fixture fails exactly the checks its Metadata.expect_failed names (so a
check that silently stopped firing fails the scan too). Run by scripts/lint-infra.sh.
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join("infra", "policy", "checkov.yaml")
FIXTURE = os.path.join("infra", "policy", "violations.json")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    template = os.path.abspath(sys.argv[1])
    os.chdir(ROOT)
    checkov = os.path.join(os.path.dirname(sys.executable), "checkov")
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    run = subprocess.run(
        [checkov, "--config-file", CONFIG, "-f", template, "-f", FIXTURE, "-o", "json"],
        capture_output=True, text=True, env=env,
    )
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        sys.stderr.write(run.stdout + run.stderr)
        print(f"policy scan: checkov gave no report (exit {run.returncode})")
        return 1
    reports = report if isinstance(report, list) else [report]
    failed, passed, skipped = [], [], []
    for r in reports:
        results = r.get("results", {})
        failed += results.get("failed_checks", [])
        passed += results.get("passed_checks", [])
        skipped += results.get("skipped_checks", [])

    def of(checks, path):
        # checkov reports an absolute path as given, a relative one with a leading "/".
        return [c for c in checks if c["file_path"] == path
                or os.path.normpath(os.path.join(ROOT, c["file_path"].lstrip("/"))) == path]

    problems = []
    for c in of(failed, template):
        problems.append(f"{c['resource']}: {c['check_id']} {c['check_name']}")
    for c in of(skipped, template):
        if not (c.get("check_result", {}).get("suppress_comment") or "").strip():
            problems.append(f"{c['resource']}: {c['check_id']} suppressed without a reason")

    with open(FIXTURE, encoding="utf-8") as f:
        fixture = json.load(f)
    fixture_path = os.path.join(ROOT, FIXTURE)
    got = {}
    for c in of(failed, fixture_path):
        got.setdefault(c["resource"].split(".", 1)[1], set()).add(c["check_id"])
    for name, resource in fixture["Resources"].items():
        want = set(resource.get("Metadata", {}).get("expect_failed", []))
        have = got.get(name, set())
        if want != have:
            problems.append(f"{FIXTURE} {name}: expected to fail {sorted(want)}, failed {sorted(have)}")

    checks = sorted({c["check_id"] for c in of(passed, template)})
    own = [c for c in checks if "_RB_" in c]
    print(f"policy scan: {len(of(passed, template))} passed, {len(of(failed, template))} failed, "
          f"{len(of(skipped, template))} suppressed with a reason, over {len(checks)} checks "
          f"({len(own)} of runbridge's own: {', '.join(own)})")
    for c in of(skipped, template):
        print(f"  suppressed {c['check_id']} on {c['resource']}: {c['check_result']['suppress_comment']}")
    if problems:
        print("\n".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
