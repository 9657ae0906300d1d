"""The status route: Hiro's API's body, counts only for what exists."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import update
from support.builders import add_contract, add_token

from api.version import server_version
from shared.models import ChainTip, JobStatus, Sip

STATUS_PATHS = ("/metadata/v1/", "/metadata/v1", "/metadata/", "/metadata")


def test_status_when_nothing_has_been_processed(client: FlaskClient) -> None:
    expected = {"server_version": server_version(), "status": "ready", "chain_tip": None}
    for path in STATUS_PATHS:
        response = client.get(path)
        assert (response.status_code, response.json) == (200, expected), path
    assert server_version().startswith("stacks-token-metadata v")


def test_status_counts_tokens_contracts_and_jobs(client, db) -> None:
    with db.begin() as s:
        contract = add_contract(s, sip=Sip.SIP_009, job_status=JobStatus.DONE)
        for number, status in enumerate(
            (JobStatus.PENDING, JobStatus.FAILED, JobStatus.INVALID, JobStatus.QUEUED), start=1
        ):
            add_token(s, contract, number, job_status=status)
        s.execute(update(ChainTip).values(block_height=100, index_block_hash="0xabc"))
    response = client.get("/metadata/v1/")
    assert response.json == {
        "server_version": server_version(),
        "status": "ready",
        "chain_tip": {"block_height": 100, "index_block_hash": "0xabc"},
        "tokens": {"nft": 4},
        "token_contracts": {"sip-009": 1},
        "job_queue": {"pending": 1, "failed": 1, "invalid": 1, "queued": 1, "done": 1},
    }
    assert list(response.json) == [
        "server_version",
        "status",
        "chain_tip",
        "tokens",
        "token_contracts",
        "job_queue",
    ]
    assert client.get("/metadata/").json == response.json


def test_status_counts_are_kept_for_a_few_seconds_but_the_chain_tip_is_fresh(
    client, db, app
) -> None:
    app.extensions["token_metadata_counts"].ttl_s = 60  # longer than any pause of this test
    with db.begin() as s:
        add_token(s, add_contract(s))
    assert client.get("/metadata/v1/").json["tokens"] == {"nft": 1}
    with db.begin() as s:
        add_token(s, add_contract(s))
        s.execute(update(ChainTip).values(block_height=7, index_block_hash="0x07"))
    body = client.get("/metadata/v1/").json
    assert body["tokens"] == {"nft": 1}  # counted once per ttl_s
    assert body["chain_tip"] == {"block_height": 7, "index_block_hash": "0x07"}
    app.extensions["token_metadata_counts"].ttl_s = 0
    assert client.get("/metadata/v1/").json["tokens"] == {"nft": 2}
