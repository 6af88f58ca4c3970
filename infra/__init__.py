"""This repository's CDK app (context keys, attach and sample-cluster stacks) on ecs_drain_hook.

Importing it quiets the banners jsii's Node runtime prints on a Node release it calls old or
untested (the pinned aws-cdk-lib supports Node 22 and 24 and still runs on 20): set before
aws-cdk-lib is imported, so `npx cdk synth`, the tests and the sandbox print none. A value
already in the environment wins.
"""

import os

# jsii reads a list of Node major versions whose end-of-life banner to leave out.
QUIET_NODE = {
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "18,19,20,21",
    "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
}
for _name, _value in QUIET_NODE.items():
    os.environ.setdefault(_name, _value)
