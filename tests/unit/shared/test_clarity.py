"""Clarity value codec: the shared vectors both ways, plus the encoder's refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.clarity import (
    Bool,
    Buffer,
    ClarityDecodeError,
    ClarityEncodeError,
    ClarityError,
    ClarityList,
    ClarityTuple,
    ClarityValue,
    ContractPrincipal,
    Int,
    OptionalNone,
    OptionalSome,
    ResponseErr,
    ResponseOk,
    StandardPrincipal,
    StringAscii,
    StringUtf8,
    UInt,
    deserialize,
    from_hex,
    from_json,
    principal_from_string,
    serialize,
    to_hex,
    to_json,
)

DATA = Path(__file__).parents[2] / "data"
SIP009_DEPLOYER = "SP2PABAF9FTAJYNFZH93XENAJ8FVY99RRM50D2JG9"
SIP009_HASH160 = bytes.fromhex("aca5a9e97e952f55ff8a47d7555243f7e4a718a1")


def _cases(file_name: str, key: str) -> list[Any]:
    document = json.loads((DATA / file_name).read_text(encoding="utf-8"))
    return [pytest.param(case, id=case["description"]) for case in document[key]]


VALID = _cases("clarity-values.json", "cases")
DECODE_ONLY = _cases("clarity-values.json", "decode_only")
INVALID = _cases("clarity-invalid.json", "cases")
SIXTEEN_DEEP = "0a" * 16 + "01" + "00" * 15 + "01"
THIRTY_THREE_DEEP = "0a" * 33 + "01" + "00" * 15 + "01"


def _nested_some(depth: int) -> ClarityValue:
    value: ClarityValue = UInt(1)
    for _ in range(depth):
        value = OptionalSome(value)
    return value


def test_vector_files_hold_every_documented_case() -> None:
    assert (len(VALID), len(DECODE_ONLY), len(INVALID)) == (129, 2, 59)


@pytest.mark.parametrize("case", VALID)
def test_valid_vector_decodes_to_its_repr(case: dict[str, Any]) -> None:
    value = from_hex(case["hex"])

    assert value == from_json(case["repr"])
    assert to_json(value) == case["repr"]


@pytest.mark.parametrize("case", VALID)
def test_valid_vector_repr_encodes_to_its_bytes(case: dict[str, Any]) -> None:
    value = from_json(case["repr"])

    assert serialize(value).hex() == case["hex"]
    assert to_hex(value) == "0x" + case["hex"]


@pytest.mark.parametrize("case", DECODE_ONLY)
def test_non_canonical_key_order_decodes_and_reencodes_canonically(case: dict[str, Any]) -> None:
    value = from_hex(case["hex"])

    assert value == from_json(case["repr"])
    assert serialize(value).hex() == case["canonical_hex"]


@pytest.mark.parametrize("case", INVALID)
def test_invalid_vector_is_rejected(case: dict[str, Any]) -> None:
    with pytest.raises(ClarityDecodeError):
        from_hex(case["hex"])


@pytest.mark.parametrize("case", INVALID)
def test_invalid_vector_is_rejected_at_print_event_depth_unless_only_too_deep_for_untyped(
    case: dict[str, Any],
) -> None:
    if case["hex"] == SIXTEEN_DEEP:
        assert from_hex(case["hex"], max_depth=32) == _nested_some(16)
    else:
        with pytest.raises(ClarityDecodeError):
            from_hex(case["hex"], max_depth=32)


def test_depth_limit_counts_containers_fifteen_by_default_and_up_to_thirty_two() -> None:
    assert deserialize(serialize(_nested_some(15))) == _nested_some(15)
    assert from_hex(SIXTEEN_DEEP, max_depth=32) == _nested_some(16)
    assert deserialize(serialize(_nested_some(32)), max_depth=32) == _nested_some(32)
    with pytest.raises(ClarityDecodeError, match="nesting deeper than 32"):
        from_hex(THIRTY_THREE_DEEP, max_depth=32)


def test_max_depth_above_the_type_depth_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        from_hex(THIRTY_THREE_DEEP, max_depth=33)


def test_hostile_deep_nesting_fails_fast_without_recursion_error() -> None:
    with pytest.raises(ClarityDecodeError, match="deeper than 15 containers at byte offset 75"):
        deserialize(b"\x0b\x00\x00\x00\x01" * 100_000)


def test_huge_declared_length_is_rejected_before_reading() -> None:
    with pytest.raises(ClarityDecodeError, match="exceeds the maximum 1048576 at byte offset 1"):
        deserialize(b"\x02\xff\xff\xff\xff")


def test_decode_error_names_the_byte_offset() -> None:
    with pytest.raises(
        ClarityDecodeError, match="string-ascii byte 0x7f not allowed at byte offset 7"
    ):
        from_hex("0d000000046162" + "7f63")


def test_from_hex_accepts_an_optional_0x_prefix() -> None:
    assert from_hex("0x03") == from_hex("03") == Bool(True)


@pytest.mark.parametrize("text", ["0x", "03 04", "0x0x03", "zz"])
def test_from_hex_rejects_text_that_is_not_one_value_in_hex(text: str) -> None:
    with pytest.raises(ClarityDecodeError):
        from_hex(text)


def test_codec_errors_share_one_base_class() -> None:
    assert issubclass(ClarityDecodeError, ClarityError)
    assert issubclass(ClarityEncodeError, ClarityError)
    assert issubclass(ClarityError, ValueError)


@pytest.mark.parametrize(
    "value",
    [Int(2**127), Int(-(2**127) - 1), UInt(-1), UInt(2**128), Int(True)],
    ids=["int-above-max", "int-below-min", "uint-negative", "uint-above-max", "bool-as-int"],
)
def test_out_of_range_integer_cannot_be_encoded(value: ClarityValue) -> None:
    with pytest.raises(ClarityEncodeError):
        serialize(value)


def test_integer_boundaries_encode_as_twos_complement() -> None:
    assert serialize(Int(-(2**127))).hex() == "0080" + "00" * 15
    assert serialize(Int(2**127 - 1)).hex() == "007f" + "ff" * 15
    assert serialize(UInt(2**128 - 1)).hex() == "01" + "ff" * 16


def test_tuple_keys_are_written_in_raw_byte_order() -> None:
    value = ClarityTuple({"a_b": Bool(True), "a-b": Bool(True), "a": Bool(True), "A": Bool(True)})

    written = serialize(value)

    assert written == bytes.fromhex(
        "0c00000004" + "014103" + "016103" + "03612d6203" + "03615f6203"
    )


def test_tuple_equality_and_hash_ignore_key_order() -> None:
    first = ClarityTuple({"a": UInt(1), "b": UInt(2)})
    second = ClarityTuple({"b": UInt(2), "a": UInt(1)})

    assert first == second
    assert hash(first) == hash(second)


@pytest.mark.parametrize(
    "value",
    [
        ClarityTuple({}),
        ClarityTuple({"1a": UInt(1)}),
        ClarityTuple({"a.b": UInt(1)}),
        ClarityTuple({"a" * 129: UInt(1)}),
    ],
    ids=["empty", "starts-with-digit", "dot", "129-chars"],
)
def test_invalid_tuple_cannot_be_encoded(value: ClarityTuple) -> None:
    with pytest.raises(ClarityEncodeError):
        serialize(value)


def test_list_elements_must_share_a_type_to_be_encoded() -> None:
    assert serialize(ClarityList((OptionalNone(), OptionalSome(UInt(1))))).hex().startswith("0b")
    with pytest.raises(ClarityEncodeError, match="list item 1"):
        serialize(ClarityList((UInt(1), Int(1))))


def test_list_of_responses_may_mix_ok_and_err_with_one_type_each() -> None:
    assert serialize(ClarityList((ResponseOk(UInt(1)), ResponseErr(Bool(False)))))
    with pytest.raises(ClarityEncodeError):
        serialize(ClarityList((ResponseOk(UInt(1)), ResponseOk(Int(1)))))


@pytest.mark.parametrize(
    "value",
    [StringAscii("caf\u00e9"), StringAscii("a\x0bb"), StringAscii("\x7f"), StringUtf8("\ud800")],
    ids=["non-ascii", "vertical-tab", "del", "lone-surrogate"],
)
def test_string_that_the_node_would_refuse_cannot_be_encoded(value: ClarityValue) -> None:
    with pytest.raises(ClarityEncodeError):
        serialize(value)


def test_value_nested_deeper_than_32_cannot_be_encoded() -> None:
    with pytest.raises(ClarityEncodeError, match="deeper than 32"):
        serialize(_nested_some(33))


def test_buffer_and_list_accept_any_bytes_and_sequence() -> None:
    assert ClarityList([UInt(1)]) == ClarityList((UInt(1),))  # type: ignore[arg-type]
    assert from_hex(to_hex(Buffer(bytes(range(256))))) == Buffer(bytes(range(256)))


def test_principal_from_string_parses_standard_and_contract_principals() -> None:
    standard = principal_from_string(SIP009_DEPLOYER)
    contract = principal_from_string(f"{SIP009_DEPLOYER}.nft-trait")

    assert standard == StandardPrincipal(22, SIP009_HASH160)
    assert contract == ContractPrincipal(22, SIP009_HASH160, "nft-trait")
    assert standard.address == SIP009_DEPLOYER
    assert isinstance(contract, ContractPrincipal)
    assert contract.contract_id == f"{SIP009_DEPLOYER}.nft-trait"


@pytest.mark.parametrize(
    "text",
    [
        SIP009_DEPLOYER.lower(),
        SIP009_DEPLOYER[:-1] + "A",
        f"{SIP009_DEPLOYER}.",
        f"{SIP009_DEPLOYER}.1abc",
        f"{SIP009_DEPLOYER}.{'c' * 129}",
        f"{SIP009_DEPLOYER}.my.token",
        f"'{SIP009_DEPLOYER}",
        "",
    ],
    ids=[
        "lowercase",
        "bad-checksum",
        "empty-name",
        "digit-first",
        "129-chars",
        "two-dots",
        "quote",
        "empty",
    ],
)
def test_principal_from_string_rejects_invalid_text(text: str) -> None:
    with pytest.raises(ClarityEncodeError):
        principal_from_string(text)


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "int", "value": 1},
        {"type": "int", "value": "+1"},
        {"type": "uint", "value": "-1"},
        {"type": "buffer", "value": "abc"},
        {"type": "bool", "value": "true"},
        {"type": "standard-principal", "value": f"{SIP009_DEPLOYER}.nft-trait"},
        {"type": "some"},
        {"type": "list", "value": {}},
        {"type": "map", "value": []},
        [],
    ],
    ids=lambda obj: json.dumps(obj)[:40],
)
def test_from_json_rejects_malformed_repr(obj: Any) -> None:
    with pytest.raises(ClarityDecodeError):
        from_json(obj)
