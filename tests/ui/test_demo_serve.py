"""`tinysync demo --serve`: the printed link signs a browser in on the demo's reports, once."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/entrar\?link=\S+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def demo_server(tmp_path: Path, browser: Any) -> Iterator[dict[str, Any]]:
    """`python -m cli demo --serve` in a fresh folder; yields its link and what it printed."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TINY_", "SYNC_", "CELERY_", "REDIS_", "DATABASE_URL"))
    }
    env.update(PYTHONPATH=str(ROOT), COLUMNS="300", SECRET_KEY="demo-serve-test-secret")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "demo", "--serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    printed: list[str] = []
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout or ()], daemon=True
    ).start()
    link = None
    deadline = time.monotonic() + 180
    try:
        while link is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert process.poll() is None, "".join(printed)
                continue
            printed.append(line)
            found = LINK.search(line)
            link = found.group(1) if found else None
        assert link, "".join(printed)
        up = time.monotonic() + 60
        while time.monotonic() < up:  # the link is printed just before the server listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield {"link": link, "printed": "".join(printed), "port": port}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_the_demo_link_lands_signed_in_on_the_demo_reports_with_portuguese_logs(
    browser, demo_server
):
    printed = demo_server["printed"]
    assert "Traceback" not in printed and "Warning" not in printed, printed
    assert f"web UI:    http://127.0.0.1:{demo_server['port']}/relatorios" in printed
    assert "Tiny:      the in-process sandbox" in printed
    context = browser.new_context(locale="pt-BR", timezone_id="America/Sao_Paulo")
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(demo_server["link"])
    assert re.search(r"/relatorios\?companyId=[0-9a-f-]{36}&month=\d{4}-\d\d$", page.url)
    assert "Demo Comércio Ltda" in page.locator("h1").inner_text()
    assert page.locator("#kpi-total").inner_text() != "R$\u00a00,00"
    page.locator("a", has_text="detalhes").first.click()
    page.wait_for_url(re.compile(r"/historico/[0-9a-f-]{36}"))
    log = page.locator("#log-table").inner_text()
    assert "Vendas verificadas:" in log, log
    for english in ("module ", "run started", "run finished", "created"):
        assert english not in log, log
    context.close()

    again = browser.new_context(locale="pt-BR")
    second = again.new_page()
    second.goto(demo_server["link"])
    assert "/entrar" in second.url
    assert "já foi usado ou expirou" in second.locator("body").inner_text()
    again.close()
