"""`python -m cli …`: the same as the `tinysync` console script (the tests' processes use it)."""

from cli import app

if __name__ == "__main__":
    app()
