"""SIP-019 notifications and SIP-013 `sft_mint` prints, decoded from the shared test vectors
(tests/data/clarity-values.json) and from hand-made variants
(docs/chain-monitor.md#notifications)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devnet.chain_events import metadata_update, sft_mint
from shared import clarity
from shared.models import TokenUpdateMode
from shared.stacks.prints import (
    MetadataUpdate,
    nft_token_id,
    parse_metadata_update,
    sft_mint_token_id,
)

VECTORS = json.loads((Path(__file__).parents[3] / "data" / "clarity-values.json").read_text())
GUILD = "SP2X0TZ59D5SZ8ACQ6YMCHHNR2ZN51Z32E2CJ173.the-explorer-guild"
WBTC = "SP3DX3H4FEYZJZ586MFBS25ZW3HZDMEW92260R2PR.Wrapped-Bitcoin"
TINY = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.tiny-nft"
STRANGER = "SP3FBR2AGK5H9QBDH3EEN6DF8EK8JY7RX8QJ5SVTE"
STANDARD, FROZEN, DYNAMIC = TokenUpdateMode


def vector(description: str) -> bytes:
    case = next(c for c in VECTORS["cases"] if c["description"] == description)
    return bytes.fromhex(case["hex"].removeprefix("0x"))


NFT, FT = "nft", "ft"
DECODED = {  # SIP-019 vector (description after "SIP-019 ") -> emitter, expected notification
    "nft notification with token-ids": (GUILD, (NFT, GUILD, (100, 101), STANDARD, None)),
    "nft notification without token-ids (refresh all tokens)": (
        GUILD,
        (NFT, GUILD, None, STANDARD, None),
    ),
    "nft notification with empty token-ids list": (GUILD, (NFT, GUILD, None, STANDARD, None)),
    "ft notification": (WBTC, (FT, WBTC, None, STANDARD, None)),
    "ft notification with update-mode standard": (WBTC, (FT, WBTC, None, STANDARD, None)),
    "nft notification with update-mode frozen": (GUILD, (NFT, GUILD, (1,), FROZEN, None)),
    "nft notification with update-mode dynamic and ttl (seconds)": (
        GUILD,
        (NFT, GUILD, (5, 6, 7), DYNAMIC, 3600),
    ),
    "ft notification with update-mode dynamic and ttl": (WBTC, (FT, WBTC, None, DYNAMIC, 86400)),
    "testnet nft notification emitted by a contract about itself": (
        TINY,
        (NFT, TINY, (1,), STANDARD, None),
    ),
}


@pytest.mark.parametrize("description", list(DECODED))
def test_sip019_vectors_decode(description: str) -> None:
    emitter, expected = DECODED[description]
    value = vector(f"SIP-019 {description}")
    assert parse_metadata_update(value, emitter, STRANGER) == MetadataUpdate(*expected)


@pytest.mark.parametrize(
    "description",
    [
        "SIP-019 sft notification with token-ids",  # not honoured, as in Hiro's API
        "non-SIP-019 print tuple that has a notification key with another value (must be ignored)",
        "SIP-013 sft_mint print event",
        "real testnet print event (funding-vault payload, from a Chainhook test fixture)",
    ],
)
def test_other_prints_are_not_notifications(description: str) -> None:
    assert parse_metadata_update(vector(description), GUILD, STRANGER) is None


def test_the_contract_or_its_deployer_may_notify_nobody_else() -> None:
    value = clarity.serialize(metadata_update("nft", GUILD))
    deployer = GUILD.split(".")[0]
    assert parse_metadata_update(value, GUILD, STRANGER) is not None
    assert parse_metadata_update(value, f"{deployer}.notifier", deployer) is not None
    assert parse_metadata_update(value, f"{STRANGER}.notifier", STRANGER) is None


@pytest.mark.parametrize("strings", ["ascii", "utf8", "buffer"])
def test_string_fields_may_be_any_string_like_value(strings: str) -> None:
    value = metadata_update(
        "nft", GUILD, [3], "dynamic", 60, strings=strings, contract_id_as_string=True
    )
    update = parse_metadata_update(clarity.serialize(value), GUILD, STRANGER)
    assert update == MetadataUpdate("nft", GUILD, (3,), DYNAMIC, 60)


def test_unknown_update_mode_is_standard_and_a_non_uint_ttl_is_ignored() -> None:
    value = metadata_update("nft", GUILD, update_mode="whenever")
    payload = dict(value.fields["payload"].fields)  # type: ignore[attr-defined]
    payload["ttl"] = clarity.Int(60)
    value = clarity.ClarityTuple({**value.fields, "payload": clarity.ClarityTuple(payload)})
    update = parse_metadata_update(clarity.serialize(value), GUILD, STRANGER)
    assert update is not None
    assert (update.update_mode, update.ttl) == (STANDARD, None)


def test_int_token_ids_are_accepted_and_bad_ones_reject_the_notification() -> None:
    def with_ids(ids: clarity.ClarityValue) -> bytes:
        value = metadata_update("nft", GUILD)
        payload = {**value.fields["payload"].fields, "token-ids": ids}  # type: ignore[attr-defined]
        return clarity.serialize(
            clarity.ClarityTuple({**value.fields, "payload": clarity.ClarityTuple(payload)})
        )

    ints = clarity.ClarityList([clarity.Int(1), clarity.Int(2), clarity.Int(2)])
    assert parse_metadata_update(with_ids(ints), GUILD, STRANGER).token_ids == (1, 2)  # type: ignore[union-attr]
    for bad in (clarity.UInt(1), clarity.ClarityList([clarity.Int(-1)])):
        assert parse_metadata_update(with_ids(bad), GUILD, STRANGER) is None


@pytest.mark.parametrize(
    "value",
    [b"", b"\x0c", b"\xff" * 10, b"\x0a" * 40 + b"\x09", clarity.serialize(clarity.UInt(1))],
)
def test_malformed_prints_decode_to_nothing(value: bytes) -> None:
    assert parse_metadata_update(value, GUILD, STRANGER) is None
    assert sft_mint_token_id(value) is None


def test_sft_mint_prints_give_their_token_id() -> None:
    assert sft_mint_token_id(vector("SIP-013 sft_mint print event")) == 7
    assert sft_mint_token_id(clarity.serialize(sft_mint(9, 1, STRANGER))) == 9
    assert sft_mint_token_id(vector("SIP-013 sft_burn print event")) is None


def test_only_uint_nft_ids_are_token_numbers() -> None:
    assert nft_token_id(clarity.serialize(clarity.UInt(12))) == 12
    assert nft_token_id(clarity.serialize(clarity.Int(12))) is None
    assert nft_token_id(b"\x01") is None
