import base64

import pytest

from shared.errors import MetadataParseError
from shared.metadata.uris import (
    FetchableUrl,
    GatewaySettings,
    decode_data_uri,
    fetchable_url,
    is_data_uri,
    parse_data_uri,
    token_specific_uri,
)

GATEWAYS = GatewaySettings(
    ipfs="https://cloudflare-ipfs.com",
    ipfs_extra_header="Authorization: Bearer 1234567890",
    arweave="https://arweave.net",
)
AUTH = {"Authorization": "Bearer 1234567890"}
CID = "QmYCnfeseno5cLpC75rmy6LQhsNYQCJabiuwqNUXMaA3Fo"


@pytest.mark.parametrize(
    ("template", "locale", "expected"),
    [
        ("http://m.io/$TOKEN_ID.json", None, "http://m.io/7.json"),
        ("http://m.io/{id}.json", None, "http://m.io/7.json"),
        ("http://m.io/{ID}.json", None, "http://m.io/7.json"),
        ("http://m.io/{id}-{locale}.json", "es", "http://m.io/7-es.json"),
        ("http://m.io/{id}-{LOCALE}.json", None, "http://m.io/7-.json"),
        ("http://m.io/{id}/{id}", None, "http://m.io/7/7"),
        ('data:application/json,{"name":"#{id}"}', None, 'data:application/json,{"name":"#7"}'),
        ("http://m.io/static.json", "es", "http://m.io/static.json"),
    ],
)
def test_token_specific_uri_fills_templates(
    template: str, locale: str | None, expected: str
) -> None:
    assert token_specific_uri(template, 7, locale) == expected


def test_token_specific_uri_does_not_interpret_backslashes_in_locales() -> None:
    assert token_specific_uri("x/{locale}", 1, r"a\1b") == r"x/a\1b"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (f"ar://{CID}/1.json", FetchableUrl(f"https://arweave.net/{CID}/1.json", "arweave", {})),
        (
            f"ipfs://ipfs/{CID}/1.json",
            FetchableUrl(f"https://cloudflare-ipfs.com/ipfs/{CID}/1.json", "ipfs", AUTH),
        ),
        (
            f"ipfs://{CID}/1.json",
            FetchableUrl(f"https://cloudflare-ipfs.com/ipfs/{CID}/1.json", "ipfs", AUTH),
        ),
        (f"ipfs://{CID}", FetchableUrl(f"https://cloudflare-ipfs.com/ipfs/{CID}", "ipfs", AUTH)),
        (
            "ipns://k51qzi5uqu5dl/meta/1.json",
            FetchableUrl(
                "https://cloudflare-ipfs.com/ipns/k51qzi5uqu5dl/meta/1.json", "ipfs", AUTH
            ),
        ),
        (
            "ipns://ipns/example.eth/1.json",
            FetchableUrl("https://cloudflare-ipfs.com/ipns/example.eth/1.json", "ipfs", AUTH),
        ),
        (
            f"https://ipfs.io/ipfs/{CID}/1.json",
            FetchableUrl(f"https://cloudflare-ipfs.com/ipfs/{CID}/1.json", "ipfs", AUTH),
        ),
        (
            f"https://gateway.pinata.cloud:8443/ipfs/{CID}?filename=1.json#frag",
            FetchableUrl(f"https://cloudflare-ipfs.com/ipfs/{CID}?filename=1.json", "ipfs", AUTH),
        ),
        (
            f"ipfs://{CID}/1.json?v=2",
            FetchableUrl(f"https://cloudflare-ipfs.com/ipfs/{CID}/1.json?v=2", "ipfs", AUTH),
        ),
        (
            "https://example.com/meta/1.json?x=1",
            FetchableUrl("https://example.com/meta/1.json?x=1", None, {}),
        ),
        ("http://m.io/1.json", FetchableUrl("http://m.io/1.json", None, {})),
        (
            "https://sub.ipfs.io/ipfs/x",
            FetchableUrl("https://sub.ipfs.io/ipfs/x", None, {}),
        ),
    ],
)
def test_fetchable_url_follows_the_gateway_table(uri: str, expected: FetchableUrl) -> None:
    assert fetchable_url(uri, GATEWAYS) == expected


def test_cid_case_is_kept() -> None:
    mixed = "bafyBEIgdYxyz"

    assert fetchable_url(f"ipfs://{mixed}/a", GATEWAYS).url.endswith(f"/ipfs/{mixed}/a")


def test_gateway_base_path_and_trailing_slash_are_respected() -> None:
    gateways = GatewaySettings(ipfs="https://gw.example/prefix/", arweave="https://ar.example/")

    assert fetchable_url("ipfs://cid/a", gateways).url == "https://gw.example/prefix/ipfs/cid/a"
    assert fetchable_url("ar://tx/a", gateways).url == "https://ar.example/tx/a"


def test_no_extra_header_unless_configured() -> None:
    assert fetchable_url("ipfs://cid/a", GatewaySettings()).headers == {}


def test_extra_header_keeps_colons_in_its_value() -> None:
    gateways = GatewaySettings(ipfs_extra_header=" X-Key :  a:b:c ")

    assert fetchable_url("ipfs://cid", gateways).headers == {"X-Key": "a:b:c"}


def test_malformed_extra_header_is_not_sent() -> None:
    gateways = GatewaySettings(ipfs_extra_header="no-colon-here")

    assert fetchable_url("ipfs://cid", gateways).headers == {}


@pytest.mark.parametrize(
    "uri",
    [
        "data:application/json,{}",
        "ftp://example.com/1.json",
        "file:///etc/passwd",
        "gopher://x",
        "ipfs://",
        "ar://",
        "http:///no-host",
        "not a uri",
        "",
    ],
)
def test_unsupported_uris_are_parse_errors(uri: str) -> None:
    with pytest.raises(MetadataParseError, match="Invalid uri"):
        fetchable_url(uri, GATEWAYS)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [("data:,x", True), ("  DATA:text/plain,x", True), ("https://x", False), ("dat", False)],
)
def test_is_data_uri(uri: str, expected: bool) -> None:
    assert is_data_uri(uri) is expected


def test_decode_base64_data_uri() -> None:
    payload = base64.b64encode('{"name":"Ñandú"}'.encode()).decode()

    assert decode_data_uri(f"data:application/json;base64,{payload}") == '{"name":"Ñandú"}'


def test_decode_base64_without_padding_and_with_line_breaks() -> None:
    payload = base64.b64encode(b'{"name":"x1"}').decode().rstrip("=")

    assert decode_data_uri(f"data:;base64,{payload[:5]}\n{payload[5:]}") == '{"name":"x1"}'


def test_decode_percent_encoded_data_uri() -> None:
    uri = "data:application/json;charset=utf-8,%7B%22name%22%3A%22%C3%B1%22%7D"

    assert decode_data_uri(uri) == '{"name":"ñ"}'


def test_decode_literal_data_uri() -> None:
    assert decode_data_uri('data:application/json,{"name":"a%b"}') == '{"name":"a%b"}'


def test_data_uri_media_type_is_kept_for_images() -> None:
    parsed = parse_data_uri("data:image/PNG;name=a.png;base64,iVBORw0KGgo=")

    assert parsed.media_type == "image/png"
    assert parsed.data.startswith(b"\x89PNG")


def test_invalid_utf8_in_a_data_uri_is_replaced_as_in_a_fetched_body() -> None:
    assert decode_data_uri("data:;base64,/w==") == "\ufffd"  # a lone 0xFF byte


@pytest.mark.parametrize(
    "uri",
    [
        "data:application/json;base64,!!!notbase64",
        "data:application/json",
        "data:bad type,x",
        "https://example.com",
    ],
)
def test_malformed_data_uris_are_parse_errors(uri: str) -> None:
    with pytest.raises(MetadataParseError):
        decode_data_uri(uri)


def test_several_ipfs_gateways_give_the_same_path_through_each_and_the_header_to_the_first() -> (
    None
):
    gateways = GatewaySettings(
        ipfs="https://a.example, https://b.example/base",
        ipfs_extra_header="Authorization: Bearer 1234567890",
    )
    target = fetchable_url(f"ipfs://{CID}/1.json?x=1", gateways)
    assert target.through_every_gateway() == (
        FetchableUrl(f"https://a.example/ipfs/{CID}/1.json?x=1", "ipfs", AUTH),
        FetchableUrl(f"https://b.example/base/ipfs/{CID}/1.json?x=1", "ipfs", {}),
    )


def test_several_arweave_gateways_give_the_same_path_through_each() -> None:
    gateways = GatewaySettings(arweave="https://arweave.net,https://ar.example")
    target = fetchable_url(f"ar://{CID}/1.json", gateways)
    assert [t.url for t in target.through_every_gateway()] == [
        f"https://arweave.net/{CID}/1.json",
        f"https://ar.example/{CID}/1.json",
    ]


def test_a_plain_url_has_no_other_gateway() -> None:
    target = fetchable_url("https://m.example/1.json", GatewaySettings(ipfs="https://a,https://b"))
    assert target.other_gateways == ()
    assert target.through_every_gateway() == (target,)
