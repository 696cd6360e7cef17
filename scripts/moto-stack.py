"""Creates the real template as a stack in a moto server, and describes what moto made of it.

    .venv/bin/python scripts/moto-stack.py create --endpoint URL --stack NAME [--param K=V]...
    .venv/bin/python scripts/moto-stack.py describe --endpoint URL --stack NAME

`create` transforms infra/template.yaml with the SAM translator (scripts/sam-transform.py), puts
each function's package into a bucket of its own, creates the stack with CloudFormation's IAM
capabilities and prints {"stack", "outputs", "packages"} as JSON. A package is the built one
(.aws-sam/build/<LogicalId>/bootstrap, zipped as `sam package` would) when `sam build` has run,
otherwise a stand-in zip whose bootstrap only says so: moto never runs it (its Lambda invokes
need Docker), so the stack's shape does not depend on which.

moto's AWS::StepFunctions::StateMachine ignores DefinitionSubstitutions, which CloudFormation
applies to DefinitionString; the definition is therefore handed to moto with them applied (an
Fn::Join of its literal pieces and the substituted values), so the state machine moto stores is the
one AWS would deploy. (Not as Fn::Sub: moto's Fn::Sub turns the ASL's `$$.Task.Token` into
`$.Task.Token`, which CloudFormation's does not.)

`describe` prints, as JSON, the stack's resources as moto lists them, the resource types of the
template it creates (listed with a logical id) and those it only records (accepted, but neither
listed nor made in the service), and each created resource as its own service describes it.
Used by runbridge_test_support::stack (tests/tests/deployed_stack.rs, cli/tests/ops.rs).
"""

import argparse
import ast
import importlib.util
import io
import json
import os
import re
import sys
import zipfile

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def clients(endpoint):
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return lambda service: session.client(service, endpoint_url=endpoint)


def transformed(code_bucket):
    spec = importlib.util.spec_from_file_location("sam_transform", os.path.join(ROOT, "scripts", "sam-transform.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.transformed(os.path.join(ROOT, "infra", "template.yaml"), code_bucket, "functions")


def package(logical_id):
    """The function's zip and where it came from."""
    built = os.path.join(ROOT, ".aws-sam", "build", logical_id, "bootstrap")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        if os.path.exists(built):
            info = zipfile.ZipInfo("bootstrap")
            info.external_attr = 0o755 << 16
            with open(built, "rb") as f:
                z.writestr(info, f.read())
            source = "built"
        else:
            info = zipfile.ZipInfo("bootstrap")
            info.external_attr = 0o755 << 16
            z.writestr(info, "#!/bin/sh\necho 'stand-in package: run sam build for the real one' >&2\nexit 1\n")
            source = "stand-in"
    return buf.getvalue(), source


def substitutions_applied(template):
    """Each state machine's DefinitionSubstitutions applied to its DefinitionString as
    CloudFormation does, written as Fn::Join of the literal pieces and the substituted values
    (moto ignores DefinitionSubstitutions; its Fn::Sub would turn the ASL's `$$.` into `$.`)."""
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] != "AWS::StepFunctions::StateMachine" or "DefinitionSubstitutions" not in props:
            continue
        definition = props["DefinitionString"]
        # The translator writes the inlined definition as Fn::Join of literal lines.
        if isinstance(definition, dict) and "Fn::Join" in definition:
            sep, parts = definition["Fn::Join"]
            assert all(isinstance(p, str) for p in parts), "a definition line is not literal"
            definition = sep.join(parts)
        values = props.pop("DefinitionSubstitutions")
        pieces = []
        for n, piece in enumerate(re.split(r"\$\{([A-Za-z0-9_]+)\}", definition)):
            # re.split with a group alternates literal text and placeholder names.
            if n % 2 == 0:
                pieces.append(piece)
            elif piece in values:
                pieces.append(values[piece])
            else:
                pieces.append("${" + piece + "}")
        props["DefinitionString"] = {"Fn::Join": ["", pieces]}


def create(args):
    aws = clients(args.endpoint)
    code_bucket = f"{args.stack.lower()}-artifacts"[:63]
    template = transformed(code_bucket)
    s3 = aws("s3")
    s3.create_bucket(Bucket=code_bucket)
    packages = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            body, packages[name] = package(name)
            s3.put_object(Bucket=code_bucket, Key=f"functions/{name}.zip", Body=body)
    substitutions_applied(template)
    params = [dict(zip(("ParameterKey", "ParameterValue"), p.split("=", 1))) for p in args.param]
    cfn = aws("cloudformation")
    cfn.create_stack(
        StackName=args.stack,
        TemplateBody=json.dumps(template),
        Parameters=params,
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    stack = cfn.describe_stacks(StackName=args.stack)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        print(f"stack {args.stack}: {stack['StackStatus']} {stack.get('StackStatusReason', '')}", file=sys.stderr)
        return 1
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    json.dump({"stack": args.stack, "outputs": outputs, "packages": packages}, sys.stdout)
    return 0


def as_document(policy):
    """A role policy's document as a dict: moto's CloudFormation stores a role's inline policy as
    the Python text of its dict (single quotes), which boto3 then cannot parse as JSON."""
    if isinstance(policy, str):
        try:
            return json.loads(policy)
        except ValueError:
            return ast.literal_eval(policy)
    return policy


def describe_resource(aws, kind, physical):
    """What the resource's own service says about it (None for types not described here)."""
    if kind == "AWS::SQS::Queue":
        return aws("sqs").get_queue_attributes(QueueUrl=physical, AttributeNames=["All"])["Attributes"]
    if kind == "AWS::StepFunctions::StateMachine":
        d = aws("stepfunctions").describe_state_machine(stateMachineArn=physical)
        return {k: d.get(k) for k in ("name", "definition", "roleArn", "type", "loggingConfiguration", "tracingConfiguration")}
    if kind == "AWS::S3::Bucket":
        s3 = aws("s3")
        out = {"name": physical}
        for field, call, key in [
            ("encryption", s3.get_bucket_encryption, "ServerSideEncryptionConfiguration"),
            ("versioning", s3.get_bucket_versioning, "Status"),
            ("public_access_block", s3.get_public_access_block, "PublicAccessBlockConfiguration"),
            ("policy", s3.get_bucket_policy, "Policy"),
            ("lifecycle", s3.get_bucket_lifecycle_configuration, "Rules"),
        ]:
            try:
                out[field] = call(Bucket=physical).get(key)
            except s3.exceptions.ClientError as e:
                out[field] = None if "NoSuch" in e.response["Error"]["Code"] else str(e)
        return out
    if kind == "AWS::IAM::Role":
        iam = aws("iam")
        role = iam.get_role(RoleName=physical)["Role"]
        policies = {
            n: as_document(iam.get_role_policy(RoleName=physical, PolicyName=n)["PolicyDocument"])
            for n in iam.list_role_policies(RoleName=physical)["PolicyNames"]
        }
        attached = [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=physical)["AttachedPolicies"]]
        return {"arn": role["Arn"], "assume_role_policy": role["AssumeRolePolicyDocument"], "policies": policies, "attached": attached}
    if kind == "AWS::Events::Rule":
        events = aws("events")
        rule = events.describe_rule(Name=physical)
        targets = events.list_targets_by_rule(Rule=physical)["Targets"]
        return {"event_pattern": json.loads(rule["EventPattern"]), "state": rule["State"], "targets": targets}
    if kind == "AWS::Lambda::Function":
        c = aws("lambda").get_function_configuration(FunctionName=physical)
        c.pop("ResponseMetadata", None)
        return c
    if kind == "AWS::Lambda::EventSourceMapping":
        m = aws("lambda").get_event_source_mapping(UUID=physical)
        return {k: m.get(k) for k in ("EventSourceArn", "FunctionArn", "BatchSize", "MaximumBatchingWindowInSeconds", "FunctionResponseTypes", "ScalingConfig", "State")}
    if kind == "AWS::DynamoDB::Table":
        dynamodb = aws("dynamodb")
        t = dynamodb.describe_table(TableName=physical)["Table"]
        ttl = dynamodb.describe_time_to_live(TableName=physical)["TimeToLiveDescription"]
        return {
            "arn": t["TableArn"],
            "key_schema": t["KeySchema"],
            "billing_mode": t.get("BillingModeSummary", {}).get("BillingMode"),
            "ttl": {"status": ttl.get("TimeToLiveStatus"), "attribute": ttl.get("AttributeName")},
        }
    if kind == "AWS::Logs::LogGroup":
        groups = aws("logs").describe_log_groups(logGroupNamePrefix=physical)["logGroups"]
        return next(({"name": g["logGroupName"], "retention_days": g.get("retentionInDays")} for g in groups if g["logGroupName"] == physical), None)
    return None


def describe(args):
    aws = clients(args.endpoint)
    cfn = aws("cloudformation")
    listed = []
    paginator = cfn.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=args.stack):
        listed.extend(page["StackResourceSummaries"])
    created = {}
    for r in listed:
        if r["LogicalResourceId"]:
            created[r["LogicalResourceId"]] = {
                "type": r["ResourceType"],
                "physical_id": r["PhysicalResourceId"],
                "status": r["ResourceStatus"],
                "described": describe_resource(aws, r["ResourceType"], r["PhysicalResourceId"]),
            }
    json.dump({"created": created, "unnamed_records": sum(1 for r in listed if not r["LogicalResourceId"])}, sys.stdout, default=str)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["create", "describe"])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--param", action="append", default=[], help="a template parameter, K=V")
    args = parser.parse_args()
    return create(args) if args.command == "create" else describe(args)


if __name__ == "__main__":
    sys.exit(main())
