"""The platform contract: the core names no platform; each platform implements every seam."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from platforms.base import Platform
from platforms.registry import PLATFORMS

ROOT = Path(__file__).resolve().parent.parent
# The core: the flow from the door to the ERP and back, and the console. It learns the platforms' names
# only from platforms.registry. (The connect flows in connector/setup/ and their pages are each one
# platform's by nature; migrations are history.)
CORE = ("connector/base", "connector/intake", "connector/orders", "connector/sync", "connector/jobs.py")
CONSOLE = ("connector/web/views/console.py", "connector/web/templates/console")


def _core_files() -> list[Path]:
    found: list[Path] = []
    for entry in CORE + CONSOLE:
        path = ROOT / entry
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in (".py", ".html"))
        found += [f for f in files if "migrations" not in f.parts]
    return found


def _names() -> re.Pattern[str]:
    words = {w.lower() for p in PLATFORMS.values() for w in (p.name, *p.label.split())}
    words |= {"woo", "shopify", "woocommerce", "bigcommerce", "magento"}  # and the ones of platforms to come
    return re.compile(r"(?<![a-z])(" + "|".join(sorted(words)) + r")(?![a-z])", re.IGNORECASE)


def test_the_core_names_no_platform() -> None:
    names = _names()
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _core_files()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if names.search(line)
    ]
    assert len(_core_files()) > 40  # the check reads the core, not an empty list
    assert not found, "the core names a platform:\n" + "\n".join(found)


def test_the_check_would_see_a_platform_name() -> None:
    assert _names().search("    if store.platform == 'shopify':")
    assert _names().search("# as WooCommerce keeps it")
    assert not _names().search("woodland shopfront")


@pytest.mark.parametrize("name", sorted(PLATFORMS))
def test_each_platform_fills_every_seam(name: str) -> None:
    found: Platform = PLATFORMS[name]
    assert found.name == name and found.label
    for topic, handler in found.topics.items():
        assert handler.kind and callable(handler.handle), topic
    assert callable(found.to_order) and callable(found.client) and callable(found.ship)
    assert found.orders.topic in found.topics, "a listed order must be handled as its topic"
    if found.receiver is None:  # polled: nothing to subscribe to
        assert found.subscriptions is None
    else:
        assert found.subscriptions is not None
        unknown = set(found.subscriptions.topics) - set(found.topics)
        assert not unknown, f"subscribed to topics nobody handles: {unknown}"
    form = found.form
    fields = {f.name for f in form.shown}
    assert set(form.required) <= set(form.settings) | set(form.secrets)
    assert fields <= set(form.settings) | set(form.secrets)
    assert found.stock.write_op and isinstance(found.stock.per_location, bool)
