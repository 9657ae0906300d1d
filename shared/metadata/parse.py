"""From a fetched body to SIP-016 metadata rows, one per locale.

The rules, and where they differ from Hiro's API: docs/token-processing.md#documents.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import json5

from shared.errors import MetadataParseError
from shared.metadata.normalize import IMAGE_KEYS, normalize, valid_attribute

MAX_NESTING_DEPTH = 100
# The largest integer a JavaScript (IEEE double) reader holds exactly.
MAX_SAFE_INTEGER = 2**53 - 1
# A decoded string holds a surrogate code point only when its document escaped half a pair
# (`\ud83d` alone): a pair decodes to one character.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Strings and comments are matched whole so that brackets inside them are not counted.
_NESTING_TOKENS = re.compile(
    r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|//[^\n]*|/\*.*?\*/|[\[\]{}]", re.DOTALL
)
_NO_LOCALES: Mapping[str, tuple[dict[str, Any], str]] = MappingProxyType({})


@dataclass
class ParsedAttribute:
    """One SIP-016 attribute; its value is any JSON value, including 0, false and ""."""

    trait_type: str
    value: Any
    display_type: str | None


@dataclass(kw_only=True)
class ParsedMetadata:
    """The metadata row of one locale of a token, ready to store."""

    sip: int = 16
    name: str
    description: str | None
    image: str | None
    attributes: list[ParsedAttribute]
    properties: dict[str, Any]
    l10n_locale: str | None
    l10n_uri: str | None
    l10n_default: bool
    # The document itself, and its display fields (docs/marketplace-api.md#normalized).
    raw: dict[str, Any] | None = None
    normalized: dict[str, Any] | None = None


def parse_metadata_json(text: str, url: str) -> dict[str, Any]:
    """Parse a metadata body leniently (JSON5) and check it is a SIP-016 object with a name."""
    if not text.strip():
        raise MetadataParseError("Fetched metadata is blank")
    if _nesting_depth(text) > MAX_NESTING_DEPTH:
        raise MetadataParseError(f"JSON parse error: {url} (nested too deeply)")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        doc = _loads_json5(text, url)
    if not isinstance(doc, dict) or "name" not in doc:
        raise MetadataParseError(f"JSON parse error: {url}")
    storable_doc: dict[str, Any] = storable(doc)
    return storable_doc


def storable(value: Any) -> Any:
    """The document as Postgres can store it and every JSON reader can read it
    (docs/token-processing.md#storable-documents): NUL characters removed from keys and
    strings, lone surrogates replaced by U+FFFD, NaN and infinities kept as the strings
    `"NaN"`, `"Infinity"` and `"-Infinity"`, and integers beyond 2^53 - 1 kept as decimal
    strings. One hostile value must not sink the token's store."""
    if isinstance(value, str):
        return _storable_text(value)
    if isinstance(value, dict):
        return {_storable_text(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _storable_text(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "")
    if _LONE_SURROGATE.search(text) is not None:
        text = _LONE_SURROGATE.sub("\ufffd", text)
    return text


def localization_locales(doc: Mapping[str, Any]) -> tuple[str, str, list[str]] | None:
    """The locale URI template, default locale and other locales a document declares."""
    localization = doc.get("localization")
    if not isinstance(localization, dict):
        return None
    uri, default, locales = (localization.get(k) for k in ("uri", "default", "locales"))
    if not (isinstance(uri, str) and isinstance(default, str) and isinstance(locales, list)):
        return None
    if not all(isinstance(locale, str) for locale in locales):
        return None
    return uri, default, [locale for locale in dict.fromkeys(locales) if locale != default]


def build_metadata(
    default_doc: dict[str, Any],
    default_uri: str,
    locales: Mapping[str, tuple[dict[str, Any], str]] = _NO_LOCALES,
) -> list[ParsedMetadata]:
    """One row for the default document, then one per fetched locale (document, URI)."""
    localization = localization_locales(default_doc)
    default_locale = localization[1] if localization is not None else None
    rows = [_row(default_doc, default_doc, default_uri, default_locale, is_default=True)]
    rows += [_row(doc, default_doc, uri, locale) for locale, (doc, uri) in locales.items()]
    return [row for row in rows if row is not None]


def _row(
    doc: Mapping[str, Any],
    default: Mapping[str, Any],
    uri: str,
    locale: str | None,
    *,
    is_default: bool = False,
) -> ParsedMetadata | None:
    """The row of one document; name, description, image and properties fall back to the
    default document's."""
    name = _coalesce(doc.get("name"), default.get("name"))
    if not _js_truthy(name):
        return None
    properties = _properties(default)
    if not is_default:
        properties = {**properties, **_properties(doc)}  # a copy: the default row keeps its own
    description = _coalesce(doc.get("description"), default.get("description"))
    image = _coalesce(_image(doc), _image(default))
    return ParsedMetadata(
        raw=dict(doc),
        normalized=normalize(doc, fallback=default),
        name=_as_text(name),
        description=None if description is None else _as_text(description),
        image=None if image is None else _as_text(image),
        attributes=_attributes(doc.get("attributes")),
        properties=properties,
        l10n_locale=locale,
        l10n_uri=uri,
        l10n_default=is_default,
    )


def _attributes(raw: Any) -> list[ParsedAttribute]:
    """Attributes when every element is valid; one bad element drops them all (as in Hiro's API)."""
    if not isinstance(raw, list) or not all(valid_attribute(item) for item in raw):
        return []
    return [ParsedAttribute(a["trait_type"], a["value"], a.get("display_type")) for a in raw]


def _properties(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the document's properties when they are an object."""
    properties = doc.get("properties")
    return dict(properties) if isinstance(properties, dict) else {}


def _image(doc: Mapping[str, Any]) -> Any:
    """The first image field present, under any of the spellings found in the wild."""
    return _coalesce(*(doc.get(key) for key in IMAGE_KEYS))


def _coalesce(*values: Any) -> Any:
    """The first value that is not null, like JavaScript's `??`."""
    return next((value for value in values if value is not None), None)


def _js_truthy(value: Any) -> bool:
    """JavaScript truthiness, which decides whether a name counts (so `[]` is a name, 0 is not)."""
    if value is None or value is False or value == "":
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0 and not math.isnan(value)
    return True


def _as_text(value: Any) -> str:
    """Stringify a JSON value for a text column: strings as-is, others in JSON spelling."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, ensure_ascii=False)


def _loads_json5(text: str, url: str) -> Any:
    """The lenient parse: comments, trailing commas, single quotes, unquoted keys."""
    try:
        return json5.loads(text)
    except (ValueError, RecursionError) as exc:
        # json5's recursive parser gives up near 50 levels; such documents are not SIP-016.
        raise MetadataParseError(f"JSON parse error: {url}") from exc


def _nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest, found without recursion."""
    if text.count("[") + text.count("{") <= MAX_NESTING_DEPTH:
        return 0  # cannot be deeper than the limit: skip the scan
    depth = deepest = 0
    for match in _NESTING_TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth -= 1
    return deepest
