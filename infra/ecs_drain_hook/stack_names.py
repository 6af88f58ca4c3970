"""The default stack names of this repository's CDK app, which the CLI also looks for when it
finds a deployment by its stack, and the ids of the outputs `EcsDrainHook(outputs=True)` adds,
which the CLI reads (standard library only)."""

from __future__ import annotations

DEFAULT_ATTACH_STACK = "EcsDrainHook"
DEFAULT_SAMPLE_CLUSTER_STACK = "EcsDrainHookSample"

# The construct's output ids. In the repository's stacks they are the output keys themselves;
# in another stack CloudFormation's key is the construct's path, the id and a hash.
OUTPUT_FUNCTION_NAME = "FunctionName"
OUTPUT_STATE_MACHINE_ARN = "StateMachineArn"
OUTPUT_INTAKE_QUEUE_URL = "IntakeQueueUrl"
OUTPUT_DEAD_LETTER_QUEUE_URL = "DeadLetterQueueUrl"
OUTPUT_DASHBOARD_URL = "DashboardUrl"
# The sample cluster's own outputs (infra/stacks): the CLI reads the cluster's name from them.
OUTPUT_SAMPLE_CLUSTER = "SampleClusterName"
OUTPUT_SAMPLE_GROUP = "SampleGroupName"
