"""The `tinysync` command tree: every command, in the order `tinysync --help` lists them."""

from __future__ import annotations

import typer

from cli.commands import company, db, prune, runs, secrets, serve, sync, workers
from cli.demo import demo

app = typer.Typer(help="tinysync: resumable sync runs of Tiny ERP data.", no_args_is_help=True)
app.command()(demo)
app.command()(sync.sync)
app.command()(serve.serve)
app.command()(workers.worker)
app.command()(workers.beat)
app.command()(workers.flower)
app.command()(serve.sandbox)
app.command()(prune.prune)
app.add_typer(db.app, name="db")
app.add_typer(company.app, name="company")
app.add_typer(runs.app, name="runs")
app.add_typer(secrets.app, name="secrets")
