"""Request files for the marketplace routes' benchmark (bench/api/run.sh), from the seeded
database: `python bench/api/marketplace_requests.py <database url> <folder>` writes

- `collections.txt`: `GET /nft/{principal}?limit=100&cursor=...`, a random page of a random
  10,000-token collection (the cursor of a random position, as the API writes cursors);
- `galleries.txt`: `GET /owners/{principal}/nft?limit=100`, a random owner's first page;
- `batches.txt`: one JSON body per line for `POST /tokens/batch`, 100 random NFTs each.
"""

from __future__ import annotations

import base64
import json
import random
import sys
from pathlib import Path

import psycopg

REQUESTS = 500


def cursor(token_number: int) -> str:
    return base64.urlsafe_b64encode(str(token_number).encode()).decode().rstrip("=")


def main(database_url: str, folder: Path) -> None:
    rng = random.Random(17)
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        collections = conn.execute(
            """SELECT c.principal, max(t.token_number) FROM smart_contracts c
               JOIN tokens t ON t.smart_contract_id = c.id
               WHERE c.sip = 'sip-009' GROUP BY c.principal"""
        ).fetchall()
        owners = [
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT owner FROM nft_ownership WHERE owner IS NOT NULL LIMIT 2000"
            )
        ]
    pages = []
    for _ in range(REQUESTS):
        principal, last = rng.choice(collections)
        after = rng.randrange(0, max(1, int(last) - 100))
        pages.append(f"/metadata/v1/nft/{principal}?limit=100&cursor={cursor(after)}")
    galleries = [f"/metadata/v1/owners/{rng.choice(owners)}/nft?limit=100" for _ in range(REQUESTS)]
    batches = []
    for _ in range(REQUESTS):
        tokens = []
        for _ in range(100):
            principal, last = rng.choice(collections)
            tokens.append({"contract_id": principal, "token_id": str(rng.randint(1, int(last)))})
        batches.append(json.dumps({"tokens": tokens}, separators=(",", ":")))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "collections.txt").write_text("\n".join(pages) + "\n")
    (folder / "galleries.txt").write_text("\n".join(galleries) + "\n")
    (folder / "batches.txt").write_text("\n".join(batches) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], Path(sys.argv[2]))
