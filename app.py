#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth -c demo=true` or `-c cluster_name=... -c asg_names=a,b`."""

import sys

from infra.app import build_app
from infra.config import ContextError

if __name__ == "__main__":
    try:
        app = build_app()
    except ContextError as error:
        # A usage message, not a stack trace: it names the -c keys to set.
        print(f"ecs-drain-hook: {error}", file=sys.stderr)
        sys.exit(2)
    app.synth()
