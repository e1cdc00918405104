"""The platform contract's settings seam: what a store of the platform is configured with, on /config and in
`config load/dump`.

The core (connector.setup.config_io, connector.web.views.forms) owns the settings every store has (customers,
stock, rules) and the validation, sealing and audit; a platform declares its own settings with their
marshmallow fields, its secrets, what a store cannot do without, and how its store form reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from marshmallow import fields


@dataclass(frozen=True)
class FormField:
    """One field of the store form (a setting or a secret)."""

    name: str
    label: str
    hint: str = ""
    secret: bool = False  # write-only: never sent back to the browser
    required: bool = False
    choices: Mapping[str, str] | None = None  # a select: value → what a person reads
    default: str = ""
    brief: str = ""  # its short name in the store's summary on /config (shown there when set)


@dataclass(frozen=True)
class StoreForm:
    settings: Mapping[str, fields.Field]  # the platform's own settings, validated as the YAML and the form give them
    secrets: tuple[str, ...]  # the secrets a store of the platform holds
    required: tuple[str, ...]  # settings or secrets it cannot do without
    shown: tuple[FormField, ...]  # the store form's connection fields, in order
    statuses: tuple[str, ...]  # the order statuses the store knows (import_statuses chooses among them)
    status_hint: str  # what the status is, as a merchant knows it
    default_import: str  # what is imported when no status is ticked
    generated: tuple[str, ...] = ()  # secrets the connector makes when none is given (a webhook header's)
    # A required secret another one stands in for (an app's client secret signs its webhooks).
    stands_in: Mapping[str, str] = field(default_factory=dict)
    only_here: Mapping[str, str] = field(default_factory=dict)  # settings other platforms' stores may not have: why
    lower_case: tuple[str, ...] = ()  # settings kept in lower case (host names)
