"""The `robust-ssl` command: Lightning's CLI over the suite's modules and YAML configs.

`robust-ssl fit --config experiments/<profile>/<run>.yaml` trains; `--help` lists the rest.
`robust-ssl evaluate-model` and `robust-ssl export` (external.py) serve classifiers from and for
other code.
A user error (missing data, impossible fraction, wrong checkpoint) ends as one line on stderr
and exit status 2, not a traceback.
"""

from __future__ import annotations

import sys

from pytorch_lightning.cli import LightningCLI

from robust_ssl.errors import RobustSSLError
from robust_ssl.progress import EpochLines
from robust_ssl.resume import AtomicCheckpointIO, RandomState


def trainer_defaults() -> dict:
    """Present in every run whatever the YAML says: exact resumption (random state in the
    checkpoints, whole checkpoint files) and, when the output is not a terminal, one line per
    epoch instead of progress bars."""
    terminal = sys.stdout.isatty()
    callbacks = [RandomState()] + ([] if terminal else [EpochLines()])
    return {"callbacks": callbacks, "plugins": [AtomicCheckpointIO()],
            "enable_progress_bar": terminal}


def run_cli(args: list[str] | None = None) -> LightningCLI:
    """Run Lightning's CLI; a user error comes out as the RobustSSLError behind it."""
    try:
        return LightningCLI(
            args=args,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            trainer_defaults=trainer_defaults(),
        )
    except Exception as error:
        user_error = _user_error(error)
        if user_error is None:
            raise
        raise user_error from None


def main(args: list[str] | None = None) -> None:
    argv = sys.argv[1:] if args is None else args
    if argv and argv[0] in ("evaluate-model", "export"):  # any classifier, not a Lightning run
        from robust_ssl.external import main as external_main

        external_main(argv)
        return
    try:
        run_cli(args)
    except RobustSSLError as error:
        print(f"robust-ssl: error: {error}", file=sys.stderr)
        sys.exit(2)


def _user_error(error: BaseException | None) -> RobustSSLError | None:
    """The RobustSSLError behind `error`: jsonargparse wraps errors raised while instantiating."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, RobustSSLError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


if __name__ == "__main__":
    main()
