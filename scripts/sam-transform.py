"""Transforms infra/template.yaml into plain CloudFormation JSON with the SAM translator, the way
CloudFormation's AWS::Serverless-2016-10-31 transform does on deploy, without AWS or Docker.

    .venv/bin/python scripts/sam-transform.py [--template T] [--code-bucket B] [--code-prefix P] [--out F]

What `sam package` would upload is pointed at S3 instead: each function's local CodeUri becomes
s3://B/P/<LogicalId>.zip (the object need not exist to transform; to create the stack it must),
and the state machine's DefinitionUri is inlined as Definition (its ${...} substitutions stay for
CloudFormation to resolve from DefinitionSubstitutions). Resource Metadata (checkov's
suppressions, BuildMethod) is passed through. Used by scripts/lint-infra.sh (the policy scan runs
on the transformed template) and by scripts/moto-stack.py (the stack the tests create in moto).
"""

import argparse
import json
import os
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """The template names no AWS managed policy (every role is written out), so the translator's
    lookup of managed policy names (an IAM call) is never needed."""

    def load(self):
        return {}


def transformed(template_path: str, code_bucket: str, code_prefix: str) -> dict:
    """The template at `template_path` as plain CloudFormation (see the module docs)."""
    template_dir = os.path.dirname(os.path.abspath(template_path))
    with open(template_path, encoding="utf-8") as f:
        template = yaml_parse(f.read())

    for name, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = f"s3://{code_bucket}/{code_prefix}/{name}.zip"
        if resource.get("Type") == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            with open(os.path.join(template_dir, props.pop("DefinitionUri")), encoding="utf-8") as f:
                props["Definition"] = json.load(f)

    # The translator fills AWS::Region/AccountId pseudo parameters from a boto session when it can;
    # a region is all it needs here.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(template, {}, NoManagedPolicies(), passthrough_metadata=True)


def main() -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", default=os.path.join(root, "infra", "template.yaml"))
    parser.add_argument("--code-bucket", default="runbridge-artifacts")
    parser.add_argument("--code-prefix", default="functions")
    parser.add_argument("--out", help="write here instead of stdout")
    args = parser.parse_args()

    text = json.dumps(transformed(args.template, args.code_bucket, args.code_prefix), indent=2, sort_keys=False) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
