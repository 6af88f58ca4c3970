"""AWS console links, per partition (standard library only: the CLI imports it, and so does the
dashboard construct for its URL output)."""

from __future__ import annotations

# The console's host per partition (links must work in China and GovCloud too).
CONSOLE_HOSTS = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


def execution_url(execution_arn: str) -> str:
    """The Step Functions console page of an execution, in the ARN's partition and Region
    (arn:<partition>:states:<region>:<account>:execution:<machine>:<name>)."""
    parts = execution_arn.split(":")
    partition, region = parts[1], parts[3]
    host = CONSOLE_HOSTS.get(partition, CONSOLE_HOSTS["aws"])
    return f"https://{host}/states/home?region={region}#/v2/executions/details/{execution_arn}"
