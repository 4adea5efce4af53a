"""What the tests and the benchmarks share, kept out of the product (it is not in the wheel
or the image) and out of the conftest files, which only define fixtures:

- `env`: the servers the tests use and `unavailable` (skip on a laptop, fail in CI);
- `databases`: a fresh, migrated PostgreSQL database or SQLite file, and emptying one;
- `processes`: a private redis-server, `tinysync worker|beat|flower` processes, `wait_until`;
- `services`: settings and services wired to the in-process sandbox, companies, stepping a run;
- `deployment`: the worker tests' deployment (real processes, the sandbox over HTTP);
- `api`, `ui`, `sandbox_calls`: what the API, UI and sandbox tests share.
"""
