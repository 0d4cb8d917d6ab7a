"""The function every benchmark job names (no worker runs it)."""


def noop(*args: object) -> None:
    """Do nothing."""
