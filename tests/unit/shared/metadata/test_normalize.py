"""The normalized fields of a document: top level first, then `properties`, right types only."""

from __future__ import annotations

from shared.metadata.normalize import STRING_FIELDS, normalize


def test_every_field_is_present_and_empty_when_the_document_has_none() -> None:
    normalized = normalize({"name": "Ape #1"})
    assert normalized["name"] == "Ape #1"
    assert all(normalized[field] is None for field in STRING_FIELDS if field != "name")
    assert (normalized["attributes"], normalized["properties"]) == ([], {})


def test_the_top_level_wins_over_properties() -> None:
    document = {
        "name": "Top",
        "image": "ipfs://top",
        "properties": {"name": "Inner", "image": "ipfs://inner", "animation_url": "ipfs://a"},
    }
    normalized = normalize(document)
    assert (normalized["name"], normalized["image"]) == ("Top", "ipfs://top")
    assert normalized["animation_url"] == "ipfs://a"  # only in properties
    assert normalized["properties"] == document["properties"]


def test_other_spellings_of_the_image_key_are_read() -> None:
    assert normalize({"name": "x", "imageUrl": "https://i/1.png"})["image"] == "https://i/1.png"
    assert normalize({"name": "x", "properties": {"image_uri": "u"}})["image"] == "u"


def test_values_of_the_wrong_type_are_left_out() -> None:
    document = {
        "name": {"en": "object"},
        "description": 42,
        "image": "",
        "background_color": ["red"],
        "properties": ["not", "an", "object"],
    }
    normalized = normalize(document)
    assert [normalized[f] for f in ("name", "description", "image", "background_color")] == [
        None,
        None,
        None,
        None,
    ]
    assert normalized["properties"] == {}


def test_attributes_come_whole_or_not_at_all() -> None:
    good = [
        {"trait_type": "Fur", "value": 0},
        {"trait_type": "Eyes", "value": "x", "display_type": "s"},
    ]
    assert normalize({"name": "x", "attributes": good})["attributes"] == good
    bad = [*good, {"value": "no trait type"}]
    assert normalize({"name": "x", "attributes": bad})["attributes"] == []
    assert normalize({"name": "x", "properties": {"attributes": good}})["attributes"] == good


def test_mime_types_and_media_fields_are_read_from_properties() -> None:
    document = {
        "name": "x",
        "properties": {"image_mime_type": "image/png", "animation_mime_type": "video/mp4"},
        "external_url": "https://example.com/1",
        "youtube_url": "https://youtube.com/watch?v=1",
        "image_data": "<svg/>",
    }
    normalized = normalize(document)
    assert (normalized["image_mime_type"], normalized["animation_mime_type"]) == (
        "image/png",
        "video/mp4",
    )
    assert normalized["external_url"] == "https://example.com/1"
    assert normalized["youtube_url"] == "https://youtube.com/watch?v=1"
    assert normalized["image_data"] == "<svg/>"  # kept as text, never rendered
