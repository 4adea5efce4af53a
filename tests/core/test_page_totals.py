"""A listing's size, when Tiny gives it (`numero_paginas`), reaches the run's progress: the
page last written and the pages of the listing, so the CLI and the UI can draw a bar with a
total instead of a spinner."""

from __future__ import annotations

from api.run_views import run_status
from core.runs import create_run, start_run
from core.steps import run_step
from tests.support.services import fast_spec, make_services, make_settings, new_company


def test_a_running_listing_reports_its_page_and_tinys_page_count(db_url, sandbox):
    # A budget of zero ends every step after one page: the run stops inside the listing.
    services = make_services(make_settings(db_url, sync_step_budget_seconds=0.0), sandbox)
    company = new_company(services, sandbox, "tok-pages", fast_spec(orders=900, days=30))
    with services.session_factory() as session:
        run = create_run(session, services.settings, company_id=company, mode="incremental")
        start_run(session, run.id)

    seen: list[tuple[int, int]] = []
    for _ in range(6):
        run_step(services.session_factory, services.settings, services.client, run.id)
        with services.session_factory() as session:
            entry = run_status(session, run.id)["progress"]["modules"]["vw_vendas"]
        if entry["status"] == "running" and entry.get("listing"):
            seen.append((entry["listing"]["page"], entry["listing"]["pages"]))

    pages = {total for _, total in seen}
    assert len(pages) == 1 and pages.pop() > 1, seen  # Tiny's numero_paginas, one listing
    walked = [page for page, _ in seen]
    assert walked == sorted(walked) and walked[0] == 1 and len(set(walked)) > 1, seen
    services.close()
