"""The `nurture` command line: `app.py` is the Typer app, one module per command group."""
