"""``python -m rediscron`` runs the ``rqrcron`` command line."""

from .cli import main

main(prog_name="rqrcron")
