"""CDK app for ecs-drain-hook: the reusable EcsDrainHook construct and the stack app.py builds."""
