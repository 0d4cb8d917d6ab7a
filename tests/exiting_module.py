"""A module that exits when imported, as a script using argparse at import time does."""

raise SystemExit(2)


def never() -> None:  # pragma: no cover
    pass
