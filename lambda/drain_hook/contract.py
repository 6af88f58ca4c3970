"""Names the Lambda, the state machine and the CDK construct must agree on, written once.

Standard library only: the construct imports this module to build the EventBridge rules, IAM
conditions, alarms and dashboard from the same names the Lambda writes and reads.
"""

from __future__ import annotations

SERVICE_NAME = "ecs-drain-hook"  # Powertools service: log key and metric dimension
METRICS_NAMESPACE = "EcsDrainHook"

# Events the Lambda takes (source, detail-type), per the AWS event references.
LIFECYCLE_SOURCE = "aws.autoscaling"
LIFECYCLE_DETAIL_TYPE = "EC2 Instance-terminate Lifecycle Action"
ECS_SOURCE = "aws.ecs"
CONTAINER_INSTANCE_DETAIL_TYPE = "ECS Container Instance State Change"
STATES_SOURCE = "aws.states"
EXECUTION_STATUS_DETAIL_TYPE = "Step Functions Execution Status Change"
# Loop ends that leave a lifecycle action to release (execution status change event statuses).
LOOP_BAD_ENDS = ("FAILED", "TIMED_OUT", "ABORTED")

# ECS custom attribute on a container instance while we drain it (PutAttributes). It is AWS's
# record of our drain (start of the hold and the loop that owns it), it rides along in every
# "ECS Container Instance State Change" event, and the EventBridge rule matches its name, so
# only instances we drain wake the Lambda. A second one names the lifecycle action (hook, group).
DRAIN_ATTRIBUTE = "ecs-drain-hook"
ACTION_ATTRIBUTE = "ecs-drain-hook.action"

# Metrics the Lambda emits (Powertools EMF, dimension service=SERVICE_NAME).
METRIC_DRAINS_STARTED = "DrainsStarted"
METRIC_DRAINS_COMPLETED = "DrainsCompleted"
METRIC_DRAINS_FORCED = "DrainsForced"  # released at the deadline with tasks left
METRIC_DRAINS_AGENT_LOST = "DrainsAgentLost"  # released after the agent stayed disconnected
METRIC_LOOP_END_RELEASES = "LoopEndReleases"  # released after the loop failed, timed out, aborted
METRIC_DRAIN_FAILURES = "DrainFailures"  # ECS refused DRAINING (retried next poll)
METRIC_CLUSTER_NOT_FOUND = "ClusterNotFound"
METRIC_INPUT_REJECTED = "InputRejected"
METRIC_OTHER_TERMINATION_HOOKS = "OtherTerminationHooks"
METRIC_TASKS_REMAINING = "TasksRemaining"
METRIC_TASKS_STOPPED = "TasksStopped"
METRIC_DRAIN_SECONDS = "DrainSeconds"
METRIC_RELEASE_LATENCY = "ReleaseLatencySeconds"  # last task STOPPED -> completion, when known
# Metrics an alarm watches: any datapoint >= 1 in 5 minutes is worth a look.
ALARMED_METRICS = (
    METRIC_DRAINS_FORCED,
    METRIC_DRAINS_AGENT_LOST,
    METRIC_LOOP_END_RELEASES,
    METRIC_CLUSTER_NOT_FOUND,
)

# The ASL file's substitution for the drain function's ARN.
FUNCTION_ARN_SUBSTITUTION = "DrainFunctionArn"
