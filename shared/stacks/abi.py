"""Which token standard a contract implements, judged from its ABI (docs/chain-monitor.md).

Unlike Hiro's API, composite argument types are compared structurally, so a function
taking `(buff 34)` does not match one taking `(list 5 uint)`
(docs/reference-differences.md#abi-matching).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.models.enums import Sip

AbiType = str | Mapping[str, Any]

_MEMO_OPTIONAL: AbiType = {"optional": {"buffer": {"length": 34}}}
_MEMO: AbiType = {"buffer": {"length": 34}}

FT_FUNCTIONS: dict[str, tuple[AbiType, ...]] = {
    "transfer": ("uint128", "principal", "principal", _MEMO_OPTIONAL),
    "get-name": (),
    "get-symbol": (),
    "get-decimals": (),
    "get-balance": ("principal",),
    "get-total-supply": (),
    "get-token-uri": (),
}
NFT_FUNCTIONS: dict[str, tuple[AbiType, ...]] = {
    "get-last-token-id": (),
    "get-token-uri": ("uint128",),
    "get-owner": ("uint128",),
    "transfer": ("uint128", "principal", "principal"),
}
SFT_FUNCTIONS: dict[str, tuple[AbiType, ...]] = {
    "get-balance": ("uint128", "principal"),
    "get-overall-balance": ("principal",),
    "get-total-supply": ("uint128",),
    "get-overall-supply": (),
    "get-decimals": ("uint128",),
    "get-token-uri": ("uint128",),
    "transfer": ("uint128", "uint128", "principal", "principal"),
    "transfer-memo": ("uint128", "uint128", "principal", "principal", _MEMO),
}


def classify_abi(abi: Any) -> Sip | None:
    """SFT first, then NFT (needs an NFT definition), then FT (needs an FT definition)."""
    if not isinstance(abi, Mapping):
        return None
    functions = _function_signatures(abi.get("functions"))
    if functions is None:
        return None
    if _implements(functions, SFT_FUNCTIONS):
        return Sip.SIP_013
    if _non_empty_list(abi.get("non_fungible_tokens")) and _implements(functions, NFT_FUNCTIONS):
        return Sip.SIP_009
    if _non_empty_list(abi.get("fungible_tokens")) and _implements(functions, FT_FUNCTIONS):
        return Sip.SIP_010
    return None


def first_token_name(abi: Mapping[str, Any], key: str) -> str | None:
    """`fungible_tokens[0].name` or `non_fungible_tokens[0].name`, if present."""
    tokens = abi.get(key)
    if isinstance(tokens, list) and tokens and isinstance(tokens[0], Mapping):
        name = tokens[0].get("name")
        return name if isinstance(name, str) else None
    return None


def _function_signatures(functions: Any) -> dict[str, list[tuple[AbiType, ...]]] | None:
    if not isinstance(functions, list):
        return None
    signatures: dict[str, list[tuple[AbiType, ...]]] = {}
    for function in functions:
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            continue
        args = function.get("args")
        if not isinstance(args, list):
            continue
        types = tuple(arg["type"] for arg in args if isinstance(arg, Mapping) and "type" in arg)
        if len(types) == len(args):
            signatures.setdefault(function["name"], []).append(types)
    return signatures


def _implements(
    functions: Mapping[str, Sequence[tuple[AbiType, ...]]],
    required: Mapping[str, tuple[AbiType, ...]],
) -> bool:
    return all(
        any(_same_types(found, wanted) for found in functions.get(name, ()))
        for name, wanted in required.items()
    )


def _same_types(found: tuple[AbiType, ...], wanted: tuple[AbiType, ...]) -> bool:
    return len(found) == len(wanted) and all(f == w for f, w in zip(found, wanted, strict=True))


def _non_empty_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0
