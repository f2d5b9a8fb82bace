"""``python -m servin`` is the ``servin`` command (its quick front, falling back to click)."""

from servin.cli.quick.entry import main

main()
