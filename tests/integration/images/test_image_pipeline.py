"""With IMAGE_CACHE_PROCESSOR_ENABLED, a collection indexed by the real job code gets its
images cached, and the API answers with the cached URLs and serves the files."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import replace

from integration.images.images_support import run_due
from PIL import Image
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker
from support.http_server import Reply, ScriptedServer

from api.app import create_app
from api.db import close_db
from devnet import chain_db
from devnet.builders import nft_collection
from devnet.scenario import Scenario
from devnet.server import Devnet
from shared.chain.monitor import MonitorSettings, follow_chain
from shared.config import Settings
from shared.db import session_scope
from shared.models import ImageJob, JobStatus
from shared.queues import JobMessage
from shared.stacks.api_db import StacksApiDatabase
from shared.wiring import build_image_cacher, build_processor


class Broker:
    def __init__(self) -> None:
        self.messages: list[JobMessage] = []

    def __call__(self, messages: Sequence[JobMessage]) -> None:
        self.messages.extend(messages)


def index(settings: Settings, sessions: sessionmaker[Session], sba_url: str, net: Devnet) -> None:
    """Import, contract jobs, then the token jobs as one batch, as the workers would."""
    engine = create_engine(sba_url)
    broker = Broker()
    settings = replace(settings, stacks_node_rpc_url=net.node_url)
    chain = StacksApiDatabase(engine)
    processor = build_processor(settings, sessions, broker, chain)
    follow_chain(processor.ctx, chain, MonitorSettings.from_settings(settings))
    while any(message.is_contract for message in broker.messages):
        message = broker.messages.pop(0)
        processor.process_contract(message.job_id)
    processor.process_tokens([message.job_id for message in broker.messages])
    processor.metadata.fetcher.close()
    processor.fetch_pool.shutdown()
    engine.dispose()


def test_an_indexed_collection_answers_with_cached_images_the_api_serves(
    image_settings: Settings, sessions, stacks_api_database_url: str, host: ScriptedServer
) -> None:
    for number in (1, 2):
        image = host.route(f"/apes/{number}.jpg", Reply(200, jpeg(500, 500)))
        document = json.dumps({"name": f"Ape #{number}", "image": image}).encode()
        host.route(f"/apes/{number}.json", Reply(200, document))
    collection = nft_collection("apes", 2, 2, token_uri=host.url + "/apes/{id}.json")
    scenario = Scenario.build([collection], chain_tip_height=5)
    with chain_db.connect(stacks_api_database_url, autocommit=True) as conn:
        chain_db.create_schema(conn)
        chain_db.seed(conn, scenario)
    with Devnet(scenario) as net:
        index(image_settings, sessions, stacks_api_database_url, net)
    with session_scope(sessions) as s:
        assert s.scalars(select(ImageJob.status)).all() == [JobStatus.PENDING] * 2
    cacher = build_image_cacher(image_settings, sessions)
    outcomes = run_due(cacher)
    cacher.fetcher.close()
    assert [outcome.status for outcome in outcomes if outcome] == [JobStatus.DONE] * 2
    app = create_app(image_settings)
    client = app.test_client()
    principal = collection.contract_id
    with client.get(f"/metadata/v1/nft/{principal}/2") as response:
        assert response.status_code == 200
        metadata = response.get_json()["metadata"]
    assert metadata["image"] == host.url + "/apes/2.jpg"
    assert metadata["cached_image"] == f"/metadata/v1/images/{principal}/2.png"
    assert metadata["cached_thumbnail_image"] == f"/metadata/v1/images/{principal}/2-thumb.png"
    with client.get(metadata["cached_thumbnail_image"]) as thumbnail:
        assert thumbnail.status_code == 200
        assert Image.open(io.BytesIO(thumbnail.get_data())).size == (300, 300)
    close_db(app)


def jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 60, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()
