"""Allow ``python -m neurolearn_cli``."""

from neurolearn_cli.cli.app import main

main()
