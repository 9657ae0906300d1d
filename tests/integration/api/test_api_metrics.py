"""`/metrics`: request metrics per route and status, and Hiro's API's gauges."""

from __future__ import annotations

from integration.api.conftest import counted_queries
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, update
from support.builders import add_contract, add_token

from shared.models import ChainTip, JobStatus, Sip


def samples(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def test_gauges_count_the_index(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_009)
        add_token(s, contract, 1)
        add_token(s, contract, 2, job_status=JobStatus.PENDING)
        s.execute(
            update(ChainTip).values(
                block_height=321, index_block_hash="0x01", checkpoint_unknown_since=func.now()
            )
        )
    found = samples(client)
    assert found["token_metadata_block_height", ()] == 321
    assert found["token_metadata_chain_checkpoint_unknown", ()] == 1
    assert found["token_metadata_token_count", (("type", "nft"),)] == 2
    assert found["token_metadata_token_count", (("type", "ft"),)] == 0
    assert found["token_metadata_smart_contract_count", (("sip", "sip-009"),)] == 1
    assert found["token_metadata_smart_contract_count", (("sip", "sip-013"),)] == 0
    assert found["token_metadata_job_count", (("status", "done"),)] == 2
    assert found["token_metadata_job_count", (("status", "pending"),)] == 1
    assert found["token_metadata_job_count", (("status", "invalid"),)] == 0


def test_requests_are_counted_by_route_and_status(client) -> None:
    for _ in range(3):
        client.get("/metadata/v1/ft?limit=5")
    client.get("/metadata/v1/ft?limit=500")
    client.get("/metadata/ft")
    client.get("/metadata/v1/nft/nope/1")
    client.get("/some/scanner/path")
    found = samples(client)
    count = "flask_http_request_duration_seconds_count"
    assert found[count, (("method", "GET"), ("route", "/metadata/v1/ft"), ("status", "200"))] == 3
    assert found[count, (("method", "GET"), ("route", "/metadata/v1/ft"), ("status", "400"))] == 1
    assert found[count, (("method", "GET"), ("route", "/metadata/ft"), ("status", "200"))] == 1
    nft = "/metadata/v1/nft/<principal>/<token_id>"
    assert found[count, (("method", "GET"), ("route", nft), ("status", "400"))] == 1
    assert found[count, (("method", "GET"), ("route", "<unmatched>"), ("status", "404"))] == 1
    assert found["flask_http_request_total", (("method", "GET"), ("status", "200"))] == 4
    assert not any(labels and ("route", "/metrics") in labels for _, labels in found)


def test_a_scrape_costs_one_query_at_most_and_requests_none(client, app) -> None:
    with counted_queries(app) as statements:
        client.get("/metrics")
    assert len(statements) == 1
    with counted_queries(app) as statements:
        client.get("/metrics")
        client.get("/metadata/v1/")  # shares the counts: only its chain tip read remains
    assert len(statements) == 1  # the tip, read once for both the ETag and the body


def test_fast_path_requests_are_counted_like_flask_ones(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_009)
        add_token(s, contract, 1)
    client.get(f"/metadata/v1/nft/{contract.principal}/1")
    client.get(f"/metadata/nft/{contract.principal}/1")
    client.get(f"/metadata/v1/nft/{contract.principal}/2")
    found = samples(client)
    count = "flask_http_request_duration_seconds_count"
    nft = "/nft/<principal>/<token_id>"
    for prefix, status, expected in (
        ("/metadata/v1", "200", 1),
        ("/metadata", "200", 1),
        ("/metadata/v1", "404", 1),
    ):
        labels = (("method", "GET"), ("route", prefix + nft), ("status", status))
        assert found[count, labels] == expected
    assert found["flask_http_request_total", (("method", "GET"), ("status", "200"))] == 2
    assert found["flask_http_request_total", (("method", "GET"), ("status", "404"))] == 1
