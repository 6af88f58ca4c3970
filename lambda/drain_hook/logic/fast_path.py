"""The fast path: an ECS "Task State Change" event of a task that reached STOPPED.

ECS raises that event whenever a task reaches STOPPED, including a task the drain (or the
deadline policy) told to stop; a container instance event does not follow that stop ("Amazon
ECS container instance state change events"). So this is the event that can mean "the instance
is empty". The EventBridge rule keeps to our cluster's tasks on container instances; most of
them stop on instances nobody drains, so the first check is a listing of the instances being
drained, read at most every few seconds per Lambda container (no ECS call per event). For an
instance in it, the instance is checked as every poll checks it (ECS's own listing of its
unstopped tasks) and the lifecycle action is completed at once when none is left. The wait
loop stays the safety net; if both complete, the second gets "No active Lifecycle Action",
which is harmless.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from drain_hook.adapters import autoscaling, ecs, stepfunctions
from drain_hook.logic import outcomes
from drain_hook.models.answer import Answer
from drain_hook.models.observations import ServiceView, holding_tasks, short_services
from drain_hook.models.requests import TaskStoppedRequest
from drain_hook.observability import logger
from drain_hook.settings import Settings


def on_task_stopped(request: TaskStoppedRequest, settings: Settings, now: datetime) -> Answer:
    cluster, arn = request.cluster_arn, request.container_instance_arn
    if not ecs.is_being_drained(cluster, arn):
        return Answer.terminal("ignored", "the task's container instance is not one we drain")

    # Tasks this container last saw holding the instance, all told to stop: while one of them
    # is still not STOPPED (AWS's current record of it) the instance is held, whatever else.
    known = ecs.known_holders(cluster, arn) - {request.task_arn}
    if known:
        still = ecs.unstopped_of(cluster, known)
        ecs.note_holders(cluster, arn, still)
        if still:
            return Answer.terminal(
                "ignored", f"{len(still)} task(s) told to stop hold the instance"
            )

    instance = ecs.describe_container_instance(cluster, arn)
    if instance is None:
        ecs.note_drain(cluster, arn, under_way=False)
        return Answer.terminal("ignored", "ECS has no such container instance")
    instance_id = instance.ec2_instance_id
    record, action = instance.drain_record, instance.action_record
    if record is None or action is None or instance.status != "DRAINING":
        ecs.note_drain(cluster, arn, under_way=False)
        if record is None:
            why = "the drain is over (no drain record on the instance)"
        elif action is None:
            why = "no lifecycle action recorded: the wait loop completes this drain"
        else:
            why = f"the container instance is {instance.status}, not DRAINING"
        return Answer.terminal("ignored", why, instance_id=instance_id)
    logger.append_keys(instance_id=instance_id)
    if settings.daemon_tasks_hold_instance and instance.running_tasks + instance.pending_tasks:
        # Tasks ECS still wants running (or starting) on it: no listing needed to know.
        count = instance.running_tasks + instance.pending_tasks
        return Answer.terminal(
            "ignored",
            f"{count} task(s) still meant to run on the instance",
            instance_id=instance_id,
            tasks_remaining=count,
        )

    listing = ecs.list_unstopped_tasks(
        cluster, instance, {}, classify=not settings.daemon_tasks_hold_instance
    )
    holding = holding_tasks(listing.tasks, settings.daemon_tasks_hold_instance)
    if holding:
        told = {t.arn for t in holding if t.desired_status == "STOPPED"}
        ecs.note_holders(cluster, arn, told if len(told) == len(holding) else set())
        return Answer.terminal(
            "ignored",
            f"{len(holding)} unstopped task(s) hold the instance",
            instance_id=instance_id,
            tasks_remaining=len(holding),
        )
    # Past the drain deadline the deadline policy stopped these tasks: counted as forced then.
    after_deadline = now >= record.started_at + timedelta(seconds=settings.max_drain_seconds)
    if settings.release_when == "services_steady" and not after_deadline:
        short = _short_services(cluster, record.loop, listing, settings)
        if short:
            text = ", ".join(f"{s.name} {s.running}/{s.desired}" for s in short)
            return Answer.terminal(
                "ignored",
                f"no task holds the instance, but {text} run fewer than desired "
                "(RELEASE_WHEN=services_steady): the wait loop releases it once they catch up",
                instance_id=instance_id,
                tasks_remaining=0,
            )
    if not autoscaling.complete_lifecycle_action(
        action.asg_name, action.hook_name, instance_id, None
    ):
        return Answer.terminal(
            "lifecycle_ended",
            "the lifecycle action was already over",
            instance_id=instance_id,
            tasks_remaining=0,
        )
    outcomes.drain_done_by_event(
        record.started_at, now, listing.last_stopped_at, after_deadline=after_deadline
    )
    logger.info("Drain completed on a task-stopped event", extra={"task": request.task_arn})
    return Answer.terminal(
        "completed",
        "no unstopped task left on the instance: completed at once",
        instance_id=instance_id,
        tasks_remaining=0,
    )


def _short_services(
    cluster: str, loop: str, listing: ecs.TaskListing, settings: Settings
) -> tuple[ServiceView, ...]:
    """The services that had tasks on the instance and run fewer than desired, read from AWS
    as a poll reads them: the list the owning loop was started with (Step Functions keeps its
    input) and the services of the tasks ECS still lists on the instance."""
    names = stepfunctions.recorded_release_services(settings.state_machine_arn, loop)
    names |= set(listing.stopped_services) | {t.service for t in listing.tasks if t.service}
    if not names:
        return ()
    return short_services(names, ecs.describe_services(cluster, names))
