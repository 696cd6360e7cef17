"""The Python baseline of the cold-start benchmark: a minimal Lambda-style handler process that
builds the same AWS clients as runbridge's functions (S3, Step Functions, EventBridge, Secrets
Manager, SQS) and then asks the Runtime API for its first event, exactly like a Lambda runtime.
The benchmark times process start to that request."""

import os
import urllib.request

import boto3

session = boto3.session.Session()
clients = {
    name: session.client(name)
    for name in ("s3", "stepfunctions", "events", "secretsmanager", "sqs")
}


def handler(event, context):
    return {"clients": sorted(clients)}


api = os.environ["AWS_LAMBDA_RUNTIME_API"]
urllib.request.urlopen(f"http://{api}/2018-06-01/runtime/invocation/next")
