"""`tinysync`: the command line, and the composition root that wires the parts together.

- `cli:app` is the console script `tinysync` (the commands are in `cli/commands/`);
- `cli:wsgi_app()` is the Flask app for gunicorn;
- `cli:celery` is the Celery app for Celery's own command line (`celery -A cli:celery ...`).

`cli/wiring.py` is the one module that knows every package. Importing `cli` builds nothing.
"""

from __future__ import annotations

from typing import Any

from cli.main import app
from cli.wiring import build, celery_app, shared_sandbox, wsgi_app

__all__ = ["app", "build", "celery_app", "shared_sandbox", "wsgi_app"]


def __getattr__(name: str) -> Any:
    """`cli:celery`, built on first use, for Celery's own command line: `celery -A cli:celery`.

    Celery's `-A` takes an app, not a factory (`-A 'cli:celery_app()'` is refused), and an
    import of this package must not build one.
    """
    if name == "celery":
        celery = globals()["celery"] = celery_app()
        return celery
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
