"""Schemathesis against the signed-in JSON API, from the app's own OpenAPI document, in process over WSGI.

Every operation gets schema-valid calls (positive) and schema-breaking ones (negative), each answer checked
with every check schemathesis has (the CLI's `--checks all`): no 5xx, status codes, content types, headers
and bodies as documented, invalid input refused, valid input accepted, `Allow` on 405. Shared by
tests/attacks/test_schemathesis.py (bounded, fixed seed) and bench/schemathesis.py (longer, any seed).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from connector.setup.config_io import load_config
from tests.conftest import load_fixture
from tests.test_api import sign_in

PUSH_TOKEN = "erp-push-token-schemathesis-0123"
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429"]  # schemathesis's default for valid input, less 5xx
REFUSED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]  # and too large
# Where a body of the documented shape may still be refused with a 400 saying what is wrong inside it: a
# language no JSON schema describes (config as YAML text, a storefront's order payload), or rows naming
# stores by slug (one that does not exist, or a source mapped twice).
CHECKED_INSIDE = {
    "PUT /api/v1/config",
    "POST /api/v1/preview",
    "PUT /api/v1/mappings/{kind}",
    "POST /api/v1/stores/{slug}/erasures",
}  # at least one of email, phone, account must name someone
CONFIG = {
    "checks": {
        "positive_data_acceptance": {"expected-statuses": ACCEPTED},
        "negative_data_rejection": {"expected-statuses": REFUSED},
    },
    "operations": [
        {"include-name": name, "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400"]}}}
        for name in sorted(CHECKED_INSIDE)
    ],
}


@dataclass
class Report:
    calls: Counter[str] = field(default_factory=Counter)  # by operation
    answers: Counter[int] = field(default_factory=Counter)  # by status code
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{sum(self.calls.values())} calls over {len(self.calls)} operations"]
        lines += [f"  {label}: {count}" for label, count in sorted(self.calls.items())]
        lines.append("answers: " + ", ".join(f"{code}×{n}" for code, n in sorted(self.answers.items())))
        lines.append(f"{len(self.failures)} failing operation(s)")
        return "\n".join(lines + self.failures)


def fuzz_api(stack, *, examples: int, seed: int, shrink: bool = True) -> Report:  # type: ignore[no-untyped-def]
    """Run every operation of /api/v1/openapi.json `examples` times per generation mode."""
    import schemathesis
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.config import SchemathesisConfig

    load_config(
        stack.rt,
        json.dumps(
            {"erp": {"kind": "sql", "url": stack.erp_url, "lock_timeout_seconds": 0.2, "push_token": PUSH_TOKEN}}
        ),
    )
    client = sign_in(stack)
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200
    schema = schemathesis.openapi.from_dict(document.json, config=SchemathesisConfig.from_dict(CONFIG))
    schema.app = stack.app
    cookie = stack.app.config["SESSION_COOKIE_NAME"]
    cookies = {cookie: client.get_cookie(cookie).value}
    headers = {"X-CSRF-Token": client.csrf, "Authorization": f"Bearer {PUSH_TOKEN}"}  # the token for /stock
    # something to find: a failed event and a succeeded one
    stack.post_shopify(b"not json")
    stack.post_shopify(load_fixture("shopify", "order_guest.json"))
    stack.run_jobs(include_delayed=True)

    report = Report()
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    for result in schema.get_all_operations():
        operation = result.ok()
        label = operation.label
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis_seed(seed)
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                phases=phases,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case) -> None:  # type: ignore[no-untyped-def]
                response = case.call_and_validate(headers=headers, cookies=cookies)
                report.calls[label] += 1  # noqa: B023 - run() is called at once, in this iteration
                report.answers[response.status_code] += 1

            try:
                run()
            except Unsatisfiable:  # nothing to break: an operation without parameters or body
                continue
            except (
                Exception,
                BaseExceptionGroup,
            ) as exc:  # every operation's failure, then all of them reported together
                report.failures.append(f"\n---- {operation.label} ({mode.value}) ----\n{exc}")
    return report
