"""The web UI: sign-in, the reports page with its sync controls and progress modal, history.

One blueprint, wired here; what it serves lives by concern: `auth` (sign-in and sign-out,
the session and its CSRF token), `pages` (the HTML views), `format` (Portuguese labels and the
money/date filters). The report data as JSON is the API's (`api.routes_reports`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import HTTPException

from api import routes_oauth
from api.state import services
from api.ui import auth, pages
from api.ui.format import FILTERS, LABELS, mode_labels

#: `templates/ui/` and `static/` sit beside the API's modules, one level up from this package.
API_DIR = Path(__file__).resolve().parent.parent

bp = Blueprint(
    "ui",
    __name__,
    root_path=str(API_DIR),
    template_folder="templates",
    static_folder="static",
    static_url_path="/ui/static",
)

bp.add_url_rule("/entrar", view_func=auth.sign_in, methods=["GET"])
bp.add_url_rule("/entrar", view_func=auth.sign_in_post, methods=["POST"])
bp.add_url_rule("/sair", view_func=auth.sign_out, methods=["POST"])
bp.add_url_rule("/", view_func=pages.home, methods=["GET"])
bp.add_url_rule("/relatorios", view_func=pages.reports, methods=["GET"])
bp.add_url_rule("/historico", view_func=pages.history, methods=["GET"])
bp.add_url_rule("/historico/<run_id>", view_func=pages.run_detail, methods=["GET"])
bp.after_request(pages.page_headers)
bp.register_error_handler(HTTPException, pages.error_page)
# "Conectar ao Tiny" (v3 OAuth start and callback): pages of the UI, under /oauth/tiny.
bp.register_blueprint(routes_oauth.bp)


@bp.record_once
def _configure(state: BlueprintSetupState) -> None:
    app = state.app
    # The factory signs the session (SECRET_KEY); the cookie must stay HttpOnly, and
    # SameSite=Lax keeps it off cross-site POSTs, the first line against CSRF.
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.jinja_env.filters.update(FILTERS)


@bp.app_context_processor
def _ui_globals() -> dict[str, Any]:
    days = services().settings.sync_incremental_days
    return {
        "signed_in": auth.signed_in,
        "csrf_token": auth.csrf_token,
        "mode_labels": mode_labels(days),
        **LABELS,
    }
