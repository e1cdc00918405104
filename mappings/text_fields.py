"""Text as PostgreSQL can store it, for every schema that takes text from outside (the API, the
configuration loader, a platform's store settings): no NUL, bounded, and a setting's field kinds."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

# Lengths: a host name's (RFC 1035), a URL browsers and proxies accept, ids as the stores issue them.
HOST_MAX, URL_MAX, ID_MAX, NAME_MAX, PATH_MAX, SECRET_MAX = 255, 2048, 64, 255, 4096, 4096

NO_NUL = validate.Regexp(r"^[^\x00]*$", error="may not contain a NUL character (\\u0000)")
# What str.strip() removes, spelled out: "\s" differs between Python and the ECMA regexes clients use.
_SPACES = "".join(f"\\u{ord(c):04x}" for c in map(chr, range(0x3001)) if c.isspace())
NOT_BLANK = validate.Regexp(
    f"^[^\\x00]*[^\\x00{_SPACES}][^\\x00]*$", error="may not be blank or contain a NUL character (\\u0000)"
)


class Text(fields.String):
    """A string without NUL, which PostgreSQL text cannot hold; with blank=False, also not only spaces
    (the view strips them). Documented as one pattern, since OpenAPI has one per string."""

    def __init__(self, *, validate: Any = None, blank: bool = True, **kwargs: Any) -> None:
        extra = [validate] if callable(validate) else list(validate or [])
        super().__init__(validate=[NO_NUL if blank else NOT_BLANK, *extra], **kwargs)


class Setting(Text):
    """A text setting without NUL. A bare YAML number (an id such as 12345) counts as its text, since
    people do not quote ids."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return super()._deserialize(value, attr, data, **kwargs)


def at_most(length: int) -> validate.Length:
    return validate.Length(max=length, error=f"at most {length} characters")


def text(length: int, *rules: Any, **kwargs: Any) -> Setting:
    return Setting(validate=[at_most(length), *rules], **kwargs)


def secret() -> Setting:
    """A sealed value: written only when given unmasked, never shown again."""
    return text(SECRET_MAX, metadata={"secret": True})


def http_url() -> fields.Url:
    return fields.Url(
        schemes={"http", "https"},
        require_tld=False,
        validate=[at_most(URL_MAX), NO_NUL],
        error_messages={"invalid": "a web address starting with http:// or https://"},
    )
