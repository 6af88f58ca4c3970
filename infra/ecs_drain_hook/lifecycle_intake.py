"""The intake queue: lifecycle events wait here and the drain Lambda takes them at a capped pace.

EventBridge sends each lifecycle event to the queue; an SQS event source mapping hands them to
the Lambda one per run, at most `INTAKE_MAX_CONCURRENCY` runs at once. A burst of scale-ins thus
queues instead of starting a thousand first rounds that throttle each other out of Auto Scaling's
API, and a first round that fails is taken again after the visibility timeout instead of after
Lambda's two asynchronous retries. Polls, ECS events and loop-end events don't pass here.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ecs_drain_hook.timing import (
    INTAKE_BATCH_SIZE,
    INTAKE_MAX_CONCURRENCY,
    INTAKE_MAX_RECEIVE_COUNT,
    INTAKE_VISIBILITY_TIMEOUT_SECONDS,
)


class LifecycleIntake(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
        max_concurrency: int = INTAKE_MAX_CONCURRENCY,
    ) -> None:
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(INTAKE_VISIBILITY_TIMEOUT_SECONDS),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=INTAKE_MAX_RECEIVE_COUNT, queue=dead_letter_queue
            ),
        )
        function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=INTAKE_BATCH_SIZE,
                max_concurrency=max_concurrency,
            )
        )
