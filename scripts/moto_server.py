"""moto_server, with one addition for the differential test (tests/tests/asl_differential.rs):
a scripted answer of moto's Docker-less Lambda (/moto-api/static/lambda-simple/response) that is
a Lambda error payload (a JSON object with "errorType") comes back as a *function error*
(`X-Amz-Function-Error: Unhandled`), as Lambda answers when a handler returns an error. Without
it, moto can only script successful invocations, so no Retry or Catch of the deployed definition
could run on its engine. Everything else is moto_server unchanged.

    .venv/bin/python scripts/moto_server.py -H 127.0.0.1 -p PORT
"""

import json
import sys

from moto.awslambda_simple import models
from moto.server import main

_invoke = models.LambdaSimpleBackend.invoke


def _invoke_with_function_errors(self, function_name, qualifier, body, headers, response_headers):
    payload = _invoke(self, function_name, qualifier, body, headers, response_headers)
    try:
        answer = json.loads(payload)
    except (TypeError, ValueError):
        return payload
    if isinstance(answer, dict) and "errorType" in answer:
        response_headers["x-amz-function-error"] = "Unhandled"
    return payload


models.LambdaSimpleBackend.invoke = _invoke_with_function_errors

if __name__ == "__main__":
    sys.argv[0] = "moto_server"
    sys.exit(main())
