"""The commands of `tinysync`, one module per concern; `cli/main.py` puts them together."""
