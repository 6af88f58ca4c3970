"""The drain loop definition (ASL), shipped as package data of ecs_drain_hook.state_machine."""
