"""The JSON API as schemathesis sees it, signed in, with every check (`--checks all`): no 5xx and nothing
served that its OpenAPI document does not say. Bounded and replayable for CI: a fixed seed and a few
examples per operation and generation mode; bench/schemathesis.py runs the same for longer.
"""

from __future__ import annotations

import os

import pytest

from tests.api_fuzz import fuzz_api

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12"))
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20261204"))
SHRINK = bool(os.environ.get("SCHEMATHESIS_SHRINK"))  # the bench shrinks what it finds to its smallest form


@pytest.mark.fuzz
@pytest.mark.parametrize("stack", ["postgres"], indirect=True)  # production's database: it refuses more
def test_the_signed_in_api_matches_its_document_and_never_answers_5xx(stack):
    report = fuzz_api(stack, examples=EXAMPLES, seed=SEED, shrink=SHRINK)
    print("\n" + report.summary())
    assert len(report.calls) >= 14, report.summary()
    assert not any(code >= 500 for code in report.answers), report.summary()
    assert not report.failures, report.summary()
