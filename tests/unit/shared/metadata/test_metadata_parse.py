import copy
import json
from typing import Any

import json5
import pytest

from shared.errors import MetadataParseError
from shared.metadata.parse import (
    ParsedAttribute,
    build_metadata,
    localization_locales,
    parse_metadata_json,
)

URL = "http://m.io/1.json"


def monkeys_default() -> dict[str, Any]:
    """A default-locale document shaped like the localization example Hiro's API tests with."""
    return {
        "sip": 16,
        "name": "Mutant Monkeys #1",
        "image": "ipfs://QmMonkeyImage/1.png",
        "attributes": [
            {"trait_type": "Background", "value": "MM1 Purple"},
            {"trait_type": "Fur", "value": 5050, "display_type": "Number"},
            {"trait_type": "Clothes", "value": ["hello", "world"]},
        ],
        "properties": {
            "external_url": "https://monkeys.example/",
            "description": "A collection of mutated monkeys.",
            "colection_name": "Mutant Monkeys",
            "artist": "Monkey Labs",
        },
        "localization": {
            "uri": "http://m-locale.io/{id}-{locale}.json",
            "default": "en",
            "locales": ["en", "es-MX"],
        },
    }


def monkeys_spanish() -> dict[str, Any]:
    return {
        "name": "Changos Mutantes #1",
        "attributes": [{"trait_type": "Fondo", "value": "MM1 Morado"}],
        "properties": {
            "description": "Una colección de changos mutantes.",
            "colection_name": "Changos Mutantes",
        },
    }


# --- parse_metadata_json


def test_strict_json_is_parsed() -> None:
    assert parse_metadata_json('{"name": "A", "n": 1}', URL) == {"name": "A", "n": 1}


def test_json5_leniency() -> None:
    text = """
    // a comment
    {
      name: 'Lenient',          /* unquoted key, single quotes */
      attributes: [{trait_type: "a", value: 1,},],
      properties: {nested: {deep: [1, 2,],},},
    }
    """

    doc = parse_metadata_json(text, URL)

    assert doc["name"] == "Lenient"
    assert doc["attributes"] == [{"trait_type": "a", "value": 1}]
    assert doc["properties"] == {"nested": {"deep": [1, 2]}}


def test_a_null_name_still_counts_as_a_name_key() -> None:
    assert parse_metadata_json('{"name": null}', URL) == {"name": None}


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_blank_body_is_rejected(text: str) -> None:
    with pytest.raises(MetadataParseError, match="Fetched metadata is blank"):
        parse_metadata_json(text, URL)


@pytest.mark.parametrize(
    "text",
    [
        '[{"name": "in an array"}]',
        '{"description": "no name"}',
        "<html><body>Bad gateway</body></html>",
        '"just a string"',
        "42",
        "null",
        '{"name": "unterminated"',
    ],
)
def test_non_sip016_bodies_are_rejected(text: str) -> None:
    with pytest.raises(MetadataParseError, match=f"JSON parse error: {URL}"):
        parse_metadata_json(text, URL)


def test_absurd_nesting_is_a_parse_error_not_a_recursion_error() -> None:
    text = '{"name": "deep", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"

    with pytest.raises(MetadataParseError, match="JSON parse error"):
        parse_metadata_json(text, URL)


def test_json5_recursion_limit_is_a_parse_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def too_deep(text: str) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(json5, "loads", too_deep)

    with pytest.raises(MetadataParseError, match="JSON parse error"):
        parse_metadata_json("{name: 'lenient'}", URL)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"name": "[" * 500, "description": "{" * 500, "list": [[[1]]]})

    assert parse_metadata_json(text, URL)["name"] == "[" * 500


def test_moderately_nested_strict_json_is_accepted() -> None:
    text = '{"name": "ok", "x": ' + "[" * 99 + "]" * 99 + "}"

    assert parse_metadata_json(text, URL)["name"] == "ok"


# --- build_metadata


def test_default_row_fields() -> None:
    doc = {
        "name": "Token",
        "description": "Desc",
        "image": "https://img/1.png",
        "attributes": [{"trait_type": "t", "value": "v"}],
        "properties": {"a": 1},
    }

    [row] = build_metadata(doc, URL)

    assert row.sip == 16
    assert (row.name, row.description, row.image) == ("Token", "Desc", "https://img/1.png")
    assert row.attributes == [ParsedAttribute("t", "v", None)]
    assert row.properties == {"a": 1}
    assert (row.l10n_default, row.l10n_locale, row.l10n_uri) == (True, None, URL)


@pytest.mark.parametrize("name", [None, "", 0, False])
def test_falsy_name_skips_the_row(name: Any) -> None:
    assert build_metadata({"name": name, "image": "x"}, URL) == []


@pytest.mark.parametrize(("name", "stored"), [(5050, "5050"), (True, "true"), (1.0, "1")])
def test_non_string_names_are_stringified(name: Any, stored: str) -> None:
    assert build_metadata({"name": name}, URL)[0].name == stored


@pytest.mark.parametrize(
    "key", ["image", "imageUrl", "image_url", "image_uri", "image_canonical_uri"]
)
def test_image_spellings(key: str) -> None:
    assert build_metadata({"name": "n", key: "https://i"}, URL)[0].image == "https://i"


def test_image_prefers_the_first_non_null_spelling() -> None:
    doc = {"name": "n", "image": None, "imageUrl": "second", "image_url": "third"}

    assert build_metadata(doc, URL)[0].image == "second"


def test_unknown_image_keys_give_no_image() -> None:
    assert build_metadata({"name": "n", "image_location": "https://i"}, URL)[0].image is None


def test_non_string_image_and_description_are_stringified() -> None:
    [row] = build_metadata({"name": "n", "image": 7, "description": {"a": 1}}, URL)

    assert (row.image, row.description) == ("7", '{"a": 1}')


def test_null_description_is_none() -> None:
    assert build_metadata({"name": "n", "description": None}, URL)[0].description is None


def test_attribute_values_of_any_type_are_kept_including_falsy_ones() -> None:
    values = ["s", 1, 0, False, "", None, [1, 2], {"k": "v"}]
    doc = {
        "name": "n",
        "attributes": [{"trait_type": f"t{i}", "value": v} for i, v in enumerate(values)],
    }

    [row] = build_metadata(doc, URL)

    assert [a.value for a in row.attributes] == values
    assert all(a.display_type is None for a in row.attributes)


def test_display_type_is_kept() -> None:
    doc = {"name": "n", "attributes": [{"trait_type": "Fur", "value": 5, "display_type": "Number"}]}

    assert build_metadata(doc, URL)[0].attributes == [ParsedAttribute("Fur", 5, "Number")]


@pytest.mark.parametrize(
    "bad",
    [
        "not an object",
        {"value": 1},
        {"trait_type": 3, "value": 1},
        {"trait_type": "t"},
        {"trait_type": "t", "value": 1, "display_type": 5},
    ],
)
def test_one_bad_attribute_drops_them_all(bad: Any) -> None:
    doc = {"name": "n", "attributes": [{"trait_type": "ok", "value": 1}, bad]}

    assert build_metadata(doc, URL)[0].attributes == []


@pytest.mark.parametrize("attributes", [None, {"trait_type": "t", "value": 1}, "x"])
def test_attributes_must_be_a_list(attributes: Any) -> None:
    assert build_metadata({"name": "n", "attributes": attributes}, URL)[0].attributes == []


def test_properties_keep_any_json_in_insertion_order() -> None:
    properties = {"s": "x", "n": 1, "o": {"a": [1]}, "t": True, "f": False, "z": None}

    [row] = build_metadata({"name": "n", "properties": properties}, URL)

    assert list(row.properties.items()) == list(properties.items())


@pytest.mark.parametrize("properties", [["a"], "x", 3, None])
def test_properties_must_be_an_object(properties: Any) -> None:
    assert build_metadata({"name": "n", "properties": properties}, URL)[0].properties == {}


def test_localizations_like_the_reference_changos_mutantes_example() -> None:
    default, spanish = monkeys_default(), monkeys_spanish()
    before = copy.deepcopy(default)
    locale_uri = "http://m-locale.io/1-es-MX.json"

    en, es = build_metadata(default, URL, {"es-MX": (spanish, locale_uri)})

    assert (en.l10n_default, en.l10n_locale, en.l10n_uri) == (True, "en", URL)
    assert en.name == "Mutant Monkeys #1"
    assert len(en.attributes) == 3
    # No leak from the localized row (docs/reference-differences.md#localized-properties).
    assert en.properties == before["properties"]
    assert (es.l10n_default, es.l10n_locale, es.l10n_uri) == (False, "es-MX", locale_uri)
    assert es.name == "Changos Mutantes #1"
    assert es.image == "ipfs://QmMonkeyImage/1.png"
    assert es.description is None
    assert es.attributes == [ParsedAttribute("Fondo", "MM1 Morado", None)]
    assert list(es.properties.items()) == [
        ("external_url", "https://monkeys.example/"),
        ("description", "Una colección de changos mutantes."),
        ("colection_name", "Changos Mutantes"),
        ("artist", "Monkey Labs"),
    ]
    assert default == before


def test_localized_row_inherits_name_description_and_properties() -> None:
    default = {"name": "Default", "description": "D", "properties": {"a": 1}}

    _, row = build_metadata(default, URL, {"fr": ({"name": None, "attributes": []}, "u")})

    assert (row.name, row.description, row.properties) == ("Default", "D", {"a": 1})


def test_localized_attributes_do_not_fall_back_to_the_default() -> None:
    default = {"name": "Default", "attributes": [{"trait_type": "t", "value": 1}]}

    _, row = build_metadata(default, URL, {"fr": ({"name": "Nom"}, "u")})

    assert row.attributes == []


def test_localized_row_with_falsy_name_everywhere_is_skipped() -> None:
    rows = build_metadata({"name": ""}, URL, {"fr": ({"name": None}, "u")})

    assert rows == []


def test_default_locale_is_none_without_a_valid_localization() -> None:
    doc = {"name": "n", "localization": {"uri": None, "default": "en", "locales": ["en"]}}

    assert build_metadata(doc, URL)[0].l10n_locale is None


# --- localization_locales


def test_localization_locales_lists_the_other_locales() -> None:
    assert localization_locales(monkeys_default()) == (
        "http://m-locale.io/{id}-{locale}.json",
        "en",
        ["es-MX"],
    )


@pytest.mark.parametrize(
    "localization",
    [
        None,
        "en",
        {"uri": None, "default": "en", "locales": ["en", "es"]},
        {"uri": "u", "default": "en"},
        {"uri": "u", "default": 1, "locales": ["en"]},
        {"uri": "u", "default": "en", "locales": "es"},
        {"uri": "u", "default": "en", "locales": ["es", 3]},
    ],
)
def test_invalid_localization_is_ignored(localization: Any) -> None:
    assert localization_locales({"name": "n", "localization": localization}) is None


def test_localization_locales_drop_duplicates() -> None:
    doc = {"localization": {"uri": "u", "default": "en", "locales": ["es", "fr", "es", "en"]}}

    assert localization_locales(doc) == ("u", "en", ["es", "fr"])


def test_nul_characters_are_removed_from_keys_and_strings() -> None:
    """Postgres text and jsonb cannot hold U+0000; one hostile value must not sink the store."""
    text = '{"name": "a\\u0000b", "k\\u0000": "\\u0000", "p": ["\\u0000x"]}'
    doc = parse_metadata_json(text, URL)
    assert doc == {"name": "ab", "k": "", "p": ["x"]}


def test_lone_surrogates_become_the_replacement_character_and_pairs_stay() -> None:
    doc = parse_metadata_json(
        '{"name": "a\\ud83db", "low": "\\ude00", "pair": "\\ud83d\\ude00", "\\ud800": 1}', URL
    )
    assert doc == {"name": "a\ufffdb", "low": "\ufffd", "pair": "\U0001f600", "\ufffd": 1}


def test_non_finite_numbers_are_kept_as_strings() -> None:
    doc = parse_metadata_json('{"name": "n", "k": [NaN, Infinity, -Infinity, 1.5, 1e400]}', URL)
    assert doc["k"] == ["NaN", "Infinity", "-Infinity", 1.5, "Infinity"]


def test_integers_beyond_what_a_double_holds_exactly_are_kept_as_decimal_strings() -> None:
    big = 2**128 - 1
    doc = parse_metadata_json(
        f'{{"name": "n", "ids": [{big}, -{big}, 9007199254740991, 9007199254740992], "t": true}}',
        URL,
    )
    assert doc["ids"] == [str(big), f"-{big}", 9007199254740991, "9007199254740992"]
    assert doc["t"] is True  # a bool is not an integer here


def test_a_repeated_key_keeps_its_last_value_as_javascript_does() -> None:
    assert parse_metadata_json('{"name": "first", "name": "last"}', URL)["name"] == "last"
    assert parse_metadata_json("{name: 'first', name: 'last',}", URL)["name"] == "last"


def test_each_row_keeps_its_document_and_normalized_fields() -> None:
    default = {"name": "Ape", "image": "ipfs://a", "animation_url": "ipfs://anim"}
    french = {"name": "Singe"}
    rows = build_metadata(
        {**default, "localization": {"uri": "u/{locale}", "default": "en", "locales": ["fr"]}},
        URL,
        {"fr": (french, "u/fr")},
    )
    assert rows[1].raw == french
    assert rows[1].normalized is not None
    assert (rows[1].normalized["name"], rows[1].normalized["animation_url"]) == (
        "Singe",
        "ipfs://anim",
    )
