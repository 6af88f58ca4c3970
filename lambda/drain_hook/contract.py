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
# Spot interruption notices (EC2 user guide, "Spot Instance interruption notices"): two minutes
# before EC2 stops or terminates the instance, whatever its lifecycle hooks say.
SPOT_SOURCE = "aws.ec2"
SPOT_DETAIL_TYPE = "EC2 Spot Instance Interruption Warning"
SPOT_NOTICE_SECONDS = 120
# A scheduled rule's event (EventBridge user guide, "Creating a rule that runs on a schedule"):
# what wakes the sweep for lost lifecycle events.
SCHEDULE_SOURCE = "aws.events"
SCHEDULE_DETAIL_TYPE = "Scheduled Event"
# The source the sweep gives the lifecycle messages it puts in the intake queue (the detail-type
# stays the lifecycle event's): never Auto Scaling's own, so logs and metrics tell them apart.
SWEEP_SOURCE = "ecs-drain-hook.sweep"
# The sweep leaves an instance to its own event until it has waited this long: an event reaches
# the intake queue within seconds, and SQS's counts of a queue may lag a minute behind.
SWEEP_GRACE_SECONDS = 120
# The intake queue's event source mapping sends one record per invoke: one first round each, so
# a burst's first rounds run at the mapping's concurrency (the Lambda refuses a larger batch).
INTAKE_BATCH_SIZE = 1

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
# A lifecycle action whose event never came (or came after the sweep) drained all the same.
METRIC_LOST_EVENTS_RECOVERED = "LostEventsRecovered"
# A lifecycle action of a group being deleted, completed at once without a drain.
METRIC_DRAINS_SKIPPED_GROUP_DELETING = "DrainsSkippedGroupDeleting"
# A failed drain (deadline, agent lost, loop end) completed with ABANDON: the host is retained.
METRIC_DRAINS_RETAINED = "DrainsRetained"
METRIC_RELEASE_LATENCY = "ReleaseLatencySeconds"  # last task STOPPED -> completion, when known
# How old a drain still under way is (seconds since the hold began), from each round that keeps
# it waiting, with the cluster as a dimension beside the service: an alarm on its Maximum finds
# the drain that is stuck.
METRIC_OLDEST_DRAIN_SECONDS = "OldestDrainSeconds"
CLUSTER_DIMENSION = "cluster"
# Metrics an alarm watches: any datapoint >= 1 in 5 minutes is worth a look.
ALARMED_METRICS = (
    METRIC_DRAINS_FORCED,
    METRIC_DRAINS_AGENT_LOST,
    METRIC_LOOP_END_RELEASES,
    METRIC_CLUSTER_NOT_FOUND,
    METRIC_TIMED_OUT_BEFORE_DRAIN,
    METRIC_DRAINS_RETAINED,
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
