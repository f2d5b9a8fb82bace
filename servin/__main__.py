"""``python -m servin`` is the ``servin`` command."""

from servin.cli.main import main

main()
