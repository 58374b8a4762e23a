"""The `robust-ssl` command: Lightning's CLI over the suite's modules and YAML configs.

`robust-ssl table1 --profile quick ...` runs a whole table and writes its report (the make
targets call it; tables.py); `robust-ssl fit --config experiments/<profile>/<run>.yaml`
trains one run; `--help` lists the rest.
`robust-ssl evaluate-model` and `robust-ssl export` (evaluation/external.py) serve classifiers
from and for other code.
A user error (missing data, impossible fraction, wrong checkpoint) ends as one line on stderr
and exit status 2, not a traceback.
"""

from __future__ import annotations

import sys

from robust_ssl.errors import exit_on_user_error
from robust_ssl.tables import COMMANDS as TABLE_COMMANDS


def main(args: list[str] | None = None) -> None:
    argv = sys.argv[1:] if args is None else args
    if argv and argv[0] in TABLE_COMMANDS:  # a whole table: cells, then its report
        from robust_ssl.tables import main as table_main

        table_main(argv)
        return
    if argv and argv[0] in ("evaluate-model", "export"):  # any classifier, not a Lightning run
        from robust_ssl.evaluation.external import main as external_main

        external_main(argv)
        return
    from robust_ssl.plumbing.lightning_cli import run_cli

    with exit_on_user_error():
        run_cli(args)


if __name__ == "__main__":
    main()
