"""End-to-end fixtures: the whole flow in the local sandbox (see local_aws/sandbox.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from local_aws.sandbox import Sandbox

SandboxFactory = Callable[..., Sandbox]


@pytest.fixture
def sandbox() -> Iterator[SandboxFactory]:
    """Open a Sandbox with the given options; it is closed after the test."""
    opened: list[Sandbox] = []

    def make(**kwargs: object) -> Sandbox:
        sb = Sandbox(**kwargs).__enter__()  # type: ignore[arg-type]
        opened.append(sb)
        return sb

    yield make
    for sb in reversed(opened):
        sb.__exit__(None, None, None)
