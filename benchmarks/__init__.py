"""Benchmarks that print figures (run from the repo root: ``python -m benchmarks.<name>``)."""

import sys
from pathlib import Path

# The Lambda's package lives in lambda/ (what is deployed); benchmarks import it from a checkout.
_LAMBDA_DIR = str(Path(__file__).resolve().parents[1] / "lambda")
if _LAMBDA_DIR not in sys.path:
    sys.path.insert(0, _LAMBDA_DIR)
