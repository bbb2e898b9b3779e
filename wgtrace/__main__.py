"""python3 -m wgtrace: the command line (wgtrace/cli)."""
from .cli import main

main()
