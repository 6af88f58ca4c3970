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
# The event that means "a task stopped": ECS raises it when any task reaches STOPPED, whereas a
# container instance event follows only some stops (not a drained task's: ECS developer guide,
# "Amazon ECS container instance state change events").
TASK_DETAIL_TYPE = "ECS Task State Change"
TASK_STOPPED_STATUS = "STOPPED"
STATES_SOURCE = "aws.states"
EXECUTION_STATUS_DETAIL_TYPE = "Step Functions Execution Status Change"
# Loop ends that leave a lifecycle action to release (execution status change event statuses).
LOOP_BAD_ENDS = ("FAILED", "TIMED_OUT", "ABORTED")

# ECS custom attribute on a container instance while we drain it (PutAttributes). It is AWS's
# record of our drain (start of the hold and the loop that owns it): a state passed back is
# checked against it, and a task-stopped event completes a drain only where it is found. A
# second one names the lifecycle action (hook, group).
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
# A lifecycle event whose action the hook's heartbeat timeout had ended before any drain of ours:
# the event came too late (a backlog, a long delivery), and the instance went with its tasks.
METRIC_TIMED_OUT_BEFORE_DRAIN = "ActionsTimedOutBeforeDrain"
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
    METRIC_TIMED_OUT_BEFORE_DRAIN,
)

# The ASL file's substitutions: the drain function's ARN, and the ARN of each service integration
# the loop calls (name -> the integration), which names the stack's partition (aws, aws-cn,
# aws-us-gov) and so is set at deploy. Each is a Task's whole Resource: cfn-lint checks a
# Resource against an aws-partition ARN unless it is exactly one substitution.
FUNCTION_ARN_SUBSTITUTION = "DrainFunctionArn"
INTEGRATION_SUBSTITUTIONS = {
    "LambdaInvokeArn": "lambda:invoke",
    "RecordHeartbeatArn": "aws-sdk:autoscaling:recordLifecycleActionHeartbeat",
}


def integration_arn(partition: str, integration: str) -> str:
    """A Step Functions service integration's Resource ARN in a partition."""
    return f"arn:{partition}:states:::{integration}"
