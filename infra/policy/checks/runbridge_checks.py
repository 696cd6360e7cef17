"""runbridge's own checkov checks over the SAM-transformed template (scripts/lint-infra.sh): what
checkov's maintained rules leave out or get wrong for this stack. Each check reads one resource;
the rules across resources are the graph checks (*.yaml) beside this file.

  CKV_RB_1  IAM Allow statements: no wildcard in an action; Resource "*" only for actions that
            take no resource (policy_sentry's IAM database, shipped with checkov), under a Sid
  CKV_RB_2  SQS encryption at rest: SSE-SQS (SqsManagedSseEnabled) or a KMS key
  CKV_RB_3  S3 bucket policy: denies every request not made over TLS, on the bucket and its objects
  CKV_RB_4  EventBridge rule and Scheduler targets: a retry policy and a dead-letter queue
  CKV_RB_5  Lambda functions log to a named log group (the template's, with a retention), not to
            the implicit /aws/lambda/<name> group that never expires
"""

from functools import lru_cache

from checkov.cloudformation.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult


def as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def policy_documents(conf):
    """Every policy document of an IAM resource: a role's inline policies, a policy's own."""
    props = conf.get("Properties") or {}
    docs = []
    for policy in as_list(props.get("Policies")):
        if isinstance(policy, dict) and isinstance(policy.get("PolicyDocument"), dict):
            docs.append(policy["PolicyDocument"])
    if isinstance(props.get("PolicyDocument"), dict):
        docs.append(props["PolicyDocument"])
    return docs


@lru_cache(maxsize=None)
def takes_no_resource(action):
    """True when IAM lists no resource type for the action: "*" is the only Resource it accepts."""
    from policy_sentry.querying.actions import get_action_data

    service, _, name = action.partition(":")
    rows = get_action_data(service, name) or {}
    formats = [row.get("resource_arn_format") for row in rows.get(service, [])]
    return bool(formats) and all(f == "*" for f in formats)


class LeastPrivilegeStatements(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="IAM Allow statements name their actions and resources; \"*\" only where the action takes no resource",
            id="CKV_RB_1",
            categories=[CheckCategories.IAM],
            supported_resources=["AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"],
        )

    def scan_resource_conf(self, conf):
        self.evaluated_keys = ["Properties"]
        for doc in policy_documents(conf):
            for statement in as_list(doc.get("Statement")):
                if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                    continue
                actions = as_list(statement.get("Action"))
                if statement.get("NotAction") is not None or statement.get("NotResource") is not None:
                    return CheckResult.FAILED
                if any(not isinstance(a, str) or "*" in a for a in actions):
                    return CheckResult.FAILED
                if "*" in as_list(statement.get("Resource")):
                    # A wildcard resource must be the only one IAM accepts, and say why (its Sid
                    # names the reason; the template's comment beside it explains).
                    if not statement.get("Sid"):
                        return CheckResult.FAILED
                    if not all(takes_no_resource(a) for a in actions):
                        return CheckResult.FAILED
        return CheckResult.PASSED


class QueueEncryptedAtRest(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="SQS queues are encrypted at rest (SSE-SQS or a KMS key)",
            id="CKV_RB_2",
            categories=[CheckCategories.ENCRYPTION],
            supported_resources=["AWS::SQS::Queue"],
        )

    def scan_resource_conf(self, conf):
        props = conf.get("Properties") or {}
        self.evaluated_keys = ["Properties/SqsManagedSseEnabled", "Properties/KmsMasterKeyId"]
        if props.get("KmsMasterKeyId"):
            return CheckResult.PASSED
        return CheckResult.PASSED if props.get("SqsManagedSseEnabled") in (True, "true") else CheckResult.FAILED


def denies_insecure_transport(statement):
    if not isinstance(statement, dict) or statement.get("Effect") != "Deny":
        return False
    principal = statement.get("Principal")
    if principal != "*" and not (isinstance(principal, dict) and as_list(principal.get("AWS")) == ["*"]):
        return False
    if not set(as_list(statement.get("Action"))) & {"*", "s3:*"}:
        return False
    secure = ((statement.get("Condition") or {}).get("Bool") or {}).get("aws:SecureTransport")
    return secure in ("false", False)


def covers_bucket_and_objects(resources):
    """The Resource list names the bucket (its ARN) and its objects (the ARN followed by /*)."""
    bucket = objects = False
    for r in resources:
        if isinstance(r, dict) and "Fn::GetAtt" in r:
            bucket = True
        elif isinstance(r, dict) and "Fn::Sub" in r and str(as_list(r["Fn::Sub"])[0]).endswith("/*"):
            objects = True
        elif isinstance(r, str):
            objects |= r.endswith("/*")
            bucket |= r.startswith("arn:") and "/" not in r
    return bucket and objects


class BucketPolicyTlsOnly(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="S3 bucket policies deny every request not made over TLS, on the bucket and its objects",
            id="CKV_RB_3",
            categories=[CheckCategories.ENCRYPTION],
            supported_resources=["AWS::S3::BucketPolicy"],
        )

    def scan_resource_conf(self, conf):
        self.evaluated_keys = ["Properties/PolicyDocument/Statement"]
        doc = (conf.get("Properties") or {}).get("PolicyDocument") or {}
        for statement in as_list(doc.get("Statement")):
            if denies_insecure_transport(statement) and covers_bucket_and_objects(as_list(statement.get("Resource"))):
                return CheckResult.PASSED
        return CheckResult.FAILED


class TargetsKeepFailedDeliveries(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="EventBridge rule and Scheduler targets retry, then keep what they could not deliver in a dead-letter queue",
            id="CKV_RB_4",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["AWS::Events::Rule", "AWS::Scheduler::Schedule"],
        )

    def scan_resource_conf(self, conf):
        props = conf.get("Properties") or {}
        targets = as_list(props.get("Targets")) if conf.get("Type") == "AWS::Events::Rule" else as_list(props.get("Target"))
        self.evaluated_keys = ["Properties/Targets", "Properties/Target"]
        for target in targets:
            if not isinstance(target, dict):
                return CheckResult.UNKNOWN
            if not (target.get("DeadLetterConfig") or {}).get("Arn") or not target.get("RetryPolicy"):
                return CheckResult.FAILED
        return CheckResult.PASSED


class FunctionsLogToTheirGroup(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="Lambda functions log to a log group of the template (with its retention), not to an implicit one",
            id="CKV_RB_5",
            categories=[CheckCategories.LOGGING],
            supported_resources=["AWS::Lambda::Function"],
        )

    def scan_resource_conf(self, conf):
        self.evaluated_keys = ["Properties/LoggingConfig/LogGroup"]
        logging = (conf.get("Properties") or {}).get("LoggingConfig") or {}
        return CheckResult.PASSED if logging.get("LogGroup") else CheckResult.FAILED


LeastPrivilegeStatements()
QueueEncryptedAtRest()
BucketPolicyTlsOnly()
TargetsKeepFailedDeliveries()
FunctionsLogToTheirGroup()
