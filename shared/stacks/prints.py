"""The print events the index acts on: SIP-019 metadata update notifications and SIP-013
`sft_mint` prints (docs/chain-monitor.md#notifications, #mints). Anything malformed decodes
to None, never an error."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from shared import clarity
from shared.c32 import is_valid_contract_principal
from shared.models.enums import TokenType, TokenUpdateMode

log = logging.getLogger(__name__)

NOTIFICATION = "token-metadata-update"
TOKEN_CLASSES = (
    TokenType.FT.value,
    TokenType.NFT.value,
)  # SFT notifications are not honoured, as in Hiro's API
# Byte strings every candidate print contains: lets the reader skip the other prints in SQL.
NOTIFICATION_MARKER = b"notification"
SFT_MINT_MARKER = b"sft_mint"


@dataclass(frozen=True)
class MetadataUpdate:
    """An authorised SIP-019 notification: which tokens to refresh and how they behave next."""

    token_class: str
    contract_id: str
    token_ids: tuple[int, ...] | None  # None: every token of the contract
    update_mode: TokenUpdateMode
    ttl: int | None


def decode_print(value: bytes) -> clarity.ClarityValue | None:
    """A printed value; contracts may print up to the full type depth (32)."""
    try:
        return clarity.deserialize(value, max_depth=clarity.MAX_TYPE_DEPTH)
    except clarity.ClarityDecodeError:
        return None


def parse_metadata_update(value: bytes, emitter: str, sender: str) -> MetadataUpdate | None:
    """The notification in a print of `emitter` in a tx sent by `sender`, if valid and allowed."""
    printed = decode_print(value)
    if not isinstance(printed, clarity.ClarityTuple):
        return None
    if _text(printed.fields.get("notification")) != NOTIFICATION:
        return None
    payload = printed.fields.get("payload")
    if not isinstance(payload, clarity.ClarityTuple):
        return None
    update = _payload(payload.fields)
    if update is None:
        return None
    # Allowed when the token contract itself, or its deployer, sent the notification.
    if emitter != update.contract_id and sender != update.contract_id.split(".", 1)[0]:
        log.info("ignoring a notification for %s from %s (%s)", update.contract_id, emitter, sender)
        return None
    return update


def _payload(fields: Mapping[str, clarity.ClarityValue]) -> MetadataUpdate | None:
    token_class = _text(fields.get("token-class"))
    contract_id = _text(fields.get("contract-id"))
    if token_class not in TOKEN_CLASSES or contract_id is None:
        return None
    if not is_valid_contract_principal(contract_id):
        return None
    try:
        token_ids = _token_ids(fields.get("token-ids")) if token_class == TokenType.NFT else None
    except ValueError:
        return None
    ttl = fields.get("ttl")
    return MetadataUpdate(
        token_class=token_class,
        contract_id=contract_id,
        token_ids=token_ids or None,  # an empty list means the whole contract
        update_mode=_update_mode(_text(fields.get("update-mode"))),
        ttl=ttl.value if isinstance(ttl, clarity.UInt) else None,
    )


def _update_mode(text: str | None) -> TokenUpdateMode:
    """Missing or unknown modes are `standard` (docs/reference-differences.md#update-mode)."""
    try:
        return TokenUpdateMode(text) if text is not None else TokenUpdateMode.STANDARD
    except ValueError:
        return TokenUpdateMode.STANDARD


def _token_ids(value: clarity.ClarityValue | None) -> tuple[int, ...] | None:
    """`(list uint)` (ints accepted); None when absent; ValueError when malformed."""
    if value is None:
        return None
    if not isinstance(value, clarity.ClarityList):
        raise ValueError("token-ids is not a list")
    ids = []
    for item in value.items:
        if not isinstance(item, clarity.UInt | clarity.Int) or item.value < 0:
            raise ValueError("token-ids holds something other than token ids")
        ids.append(item.value)
    return tuple(dict.fromkeys(ids))


def _text(value: clarity.ClarityValue | None) -> str | None:
    """A string-like field: string-ascii, string-utf8, a UTF-8 buffer or a principal."""
    if isinstance(value, clarity.StringAscii | clarity.StringUtf8):
        return value.value
    if isinstance(value, clarity.Buffer):
        try:
            return value.value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, clarity.ContractPrincipal):
        return value.contract_id
    if isinstance(value, clarity.StandardPrincipal):
        return value.address
    return None


def sft_mint_token_id(value: bytes) -> int | None:
    """The `token-id` of a SIP-013 `{type: "sft_mint", token-id: uint, ...}` print, else None."""
    printed = decode_print(value)
    if not isinstance(printed, clarity.ClarityTuple):
        return None
    kind = printed.fields.get("type")
    token_id = printed.fields.get("token-id")
    if not isinstance(kind, clarity.StringAscii | clarity.StringUtf8) or kind.value != "sft_mint":
        return None
    return token_id.value if isinstance(token_id, clarity.UInt) else None


def nft_token_id(value: bytes) -> int | None:
    """An NFT mint's id: only `uint` ids are tokens (tuple ids of SFT contracts are not)."""
    decoded = decode_print(value)
    return decoded.value if isinstance(decoded, clarity.UInt) else None
