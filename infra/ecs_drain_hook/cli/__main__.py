"""`python -m ecs_drain_hook.cli`: the same as the `ecs-drain-hook` console script."""

import sys

from ecs_drain_hook.cli.main import main

sys.exit(main())
