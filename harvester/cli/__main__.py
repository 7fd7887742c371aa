"""``python -m harvester.cli``: the same as the ``harvester`` console script."""

from harvester.cli import main

main()
