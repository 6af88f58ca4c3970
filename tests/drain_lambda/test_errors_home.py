"""Every error a round raises lives in drain_hook.errors: the state machine matches them by class
name, so a second home would let a new error slip past its lists."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import drain_hook
from drain_hook import errors

# Configuration errors stop a cold start (or synth), before any round: no state machine sees them.
SETTINGS_ERRORS = {"drain_hook.settings": {"SettingsError", "ConfigError"}}


def _exceptions_by_module() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for module in pkgutil.walk_packages(drain_hook.__path__, "drain_hook."):
        if module.name == "drain_hook.handler":  # reads the environment at import
            continue
        loaded = importlib.import_module(module.name)
        for name, value in vars(loaded).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.name
            ):
                found.setdefault(module.name, set()).add(name)
    return found


def test_only_the_errors_module_defines_errors_a_round_raises() -> None:
    found = _exceptions_by_module()
    assert found.pop("drain_hook.errors") == {
        "InputRejected",
        "TransientAwsError",
        "ErrorsOutlastedRelease",
        "PermanentAwsError",
        "ClusterNotFound",
    }
    assert found == SETTINGS_ERRORS


def test_a_rejected_event_raises_the_errors_module_s_input_rejected() -> None:
    from drain_hook.models.requests import parse_request

    with pytest.raises(errors.InputRejected, match="expected a JSON object"):
        parse_request([])
