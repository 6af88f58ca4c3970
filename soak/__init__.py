"""The soak: seeded random scenarios run end to end on the local sandbox, invariants checked.

`scenario` draws a scenario from a seed, `runner` runs it in `local_aws.sandbox.Sandbox`,
`records` keeps what the sandbox recorded, `invariants` checks it, `report` counts. Entry point:
``python -m soak run`` / ``python -m soak replay --seed N`` (docs/soak.md).
"""

import local_aws.sandbox  # noqa: F401  (puts lambda/ on sys.path: the invariants read drain_hook)
