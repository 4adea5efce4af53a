"""A separate process that needs a v3 company's access token at a given moment, as a worker
would: `python -m tests.support.v3_refresher DB_URL TINY_BASE COMPANY_ID GO_FILE`.

It says it is ready (GO_FILE.ready.PID), waits for GO_FILE to exist (so several start at
once), asks the renewer for a token, reads a page of products through the company's v3
source, and prints one JSON line: a digest of the token it used and how many products it read.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

from core.models import Company
from core.services import build_services
from core.settings import Settings


def main(db_url: str, tiny_base: str, company_id: str, go_file: str) -> None:
    settings = Settings(
        database_url=db_url,
        secret_key="test-secret-key",
        tiny_api_url=tiny_base + "/api2",
        tiny_v3_api_url=tiny_base + "/public-api/v3",
        tiny_v3_token_url=tiny_base + "/realms/tiny/protocol/openid-connect/token",
        tiny_min_interval_ms=0,
    )
    services = build_services(settings)
    assert services.client.v3 is not None
    Path(f"{go_file}.ready.{os.getpid()}").touch()  # imported and wired: ready to go
    deadline = time.monotonic() + 60
    while not Path(go_file).exists():
        if time.monotonic() > deadline:
            raise SystemExit("never told to go")
        time.sleep(0.005)
    renewer = services.client.v3.renewer(services.session_factory, settings)
    token = renewer.access_token(company_id)
    with services.session_factory() as session:
        company = session.get(Company, company_id)
        assert company is not None
        source = services.client.v3.source(services.session_factory, settings, company)
    page = source.list_page("produtos.pesquisa.php", "produtos", "produto", {"situacao": "A"}, 1)
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    print(json.dumps({"token": digest, "products": len(page.records)}), flush=True)
    services.close()


if __name__ == "__main__":
    main(*sys.argv[1:5])
