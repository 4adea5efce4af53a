"""The pages' layout and labels in a real browser: Histórico uses the page and keeps each
duration on one line, one Portuguese label per mode, months named in Portuguese."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from core.runs import cancel_run, create_run, start_run
from tests.support.ui import LiveApp
from tests.ui.test_sync_ui import expect, sign_in

ENGLISH_MONTHS = re.compile(
    r"January|February|March|April|May|June|July|August|September|October|November|December"
)


def _finished_runs(app: LiveApp, count: int) -> list[str]:
    """`count` finished runs of the company, each 2 min 08 s long."""
    ids = []
    with app.services.session_factory() as session:
        for _ in range(count):
            run = create_run(
                session, app.services.settings, company_id=app.company_id, mode="incremental"
            )
            start_run(session, run.id)
            run = cancel_run(session, run.id)
            run.finishedAt = run.startedAt + timedelta(seconds=128)
            session.commit()
            ids.append(run.id)
    return ids


def test_history_uses_the_page_is_paged_and_keeps_durations_on_one_line(
    page: Any, live_app: LiveApp
) -> None:
    ids = _finished_runs(live_app, 27)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, live_app, "/historico")
    rows = page.locator("#runs-table tbody tr[data-run-id]")
    expect()(rows).to_have_count(25)  # one page; the rest behind "Mais antigas"
    box = page.locator("#runs-table").evaluate(
        """t => { const b = t.parentElement; const s = getComputedStyle(b);
                  return {maxHeight: s.maxHeight, scroll: b.scrollHeight,
                          client: b.clientHeight}; }"""
    )
    assert box["maxHeight"] == "none" and box["scroll"] <= box["client"] + 1, box
    durations = page.locator("#runs-table tbody tr[data-run-id] td.num").first
    expect()(durations).to_have_text("2 min 08 s")
    lines = durations.evaluate(
        """td => { const r = document.createRange(); r.selectNodeContents(td);
                   return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }"""
    )
    assert lines == 1, "the duration wraps"
    expect()(rows.first).to_contain_text(re.compile(r"Rápido \(\d+ dias\)"))
    page.locator("#older-runs").click()
    expect()(rows).to_have_count(2)
    assert page.locator("#runs-table").inner_text().count("Rápido (") == 2
    assert {r.get_attribute("data-run-id") for r in rows.all()} == set(ids[:2])


def test_one_label_per_mode_and_months_in_portuguese(page: Any, live_app: LiveApp) -> None:
    sign_in(page, live_app)
    days = live_app.services.settings.sync_incremental_days
    expect()(page.locator(".modes")).to_contain_text(f"Rápido ({days} dias)")
    expect()(page.locator(".modes")).to_contain_text("Por mês")
    assert "Por Mês" not in page.content() and "Por período" not in page.content()
    for picker in ("#filter-month", "#sync-month"):
        options = page.locator(f"{picker} option").all_inner_texts()
        assert options and not any(ENGLISH_MONTHS.search(o) for o in options), options
        assert all(re.fullmatch(r"[a-zç]+ de \d{4}", o) for o in options), options
    page.get_by_label("Por mês").check()
    expect()(page.locator("#sync-month")).to_be_enabled()
    page.locator("#filter-month").select_option(live_app.month)
    page.get_by_role("button", name="Ver").click()
    expect()(page).to_have_url(re.compile(f"month={live_app.month}"))
    assert not ENGLISH_MONTHS.search(page.locator("main").inner_text())
