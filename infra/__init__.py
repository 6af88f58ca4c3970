"""This repository's CDK app (context keys, attach and demo stacks), using ecs_drain_hook."""
