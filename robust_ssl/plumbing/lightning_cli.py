"""Lightning's CLI as every run of the suite uses it: exact resumption, atomic checkpoint files
and, off a terminal, one line per epoch in every run whatever its YAML says; a user error
surfaces as the RobustSSLError behind jsonargparse's wrapping."""

from __future__ import annotations

import sys

from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.plugins.environments import SLURMEnvironment

from robust_ssl.errors import RobustSSLError
from robust_ssl.plumbing.provenance import git_commit
from robust_ssl.plumbing.progress import EpochLines
from robust_ssl.plumbing.resume import AtomicCheckpointIO, RandomState
from robust_ssl.plumbing.upstream_noise import silence


def trainer_defaults() -> dict:
    """Present in every run whatever the YAML says: exact resumption (random state in the
    checkpoints) and, when the output is not a terminal, one line per epoch instead of
    progress bars."""
    terminal = sys.stdout.isatty()
    callbacks = [RandomState()] + ([] if terminal else [EpochLines()])
    return {"callbacks": callbacks, "enable_progress_bar": terminal}


def plugins() -> list:
    """Whole checkpoint files in every run; under SLURM, no requeue of Lightning's own."""
    found = [AtomicCheckpointIO()]
    if SLURMEnvironment.detect():
        # submitit requeues a preempted or timed-out cell (runs/slurm.py); Lightning's own
        # requeue on SIGUSR1 would be a second, competing one
        found.append(SLURMEnvironment(auto_requeue=False))
    return found


class SuiteCLI(LightningCLI):
    """LightningCLI with the suite's plugins added when the trainer is made, not as parser
    defaults: jsonargparse cannot write a plugin instance into the config it saves, and warned
    "Unable to serialize instance AtomicCheckpointIO" on every run."""

    def parse_arguments(self, parser, args) -> None:
        """`args`, where given, is the whole command (runs/run.py builds it from its own flags):
        Lightning's warning against command-line arguments beside it would only repeat, in
        every cell's log, the runner's flags or those of the grid a cell was forked from."""
        argv, sys.argv = sys.argv, sys.argv[:1] if args is not None else sys.argv
        try:
            super().parse_arguments(parser, args)
        finally:
            sys.argv = argv

    def instantiate_trainer(self, **kwargs):
        configured = self._get(self.config_init, "trainer", default={}).get("plugins") or []
        configured = configured if isinstance(configured, list) else [configured]
        return super().instantiate_trainer(**kwargs, plugins=[*configured, *plugins()])


def run_cli(args: list[str] | None = None) -> LightningCLI:
    """Run Lightning's CLI; a user error comes out as the RobustSSLError behind it."""
    silence()
    git_commit()  # the code this run loaded, before the checkout can move
    try:
        return SuiteCLI(
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


def _user_error(error: BaseException | None) -> RobustSSLError | None:
    """The RobustSSLError behind `error`: jsonargparse wraps errors raised while instantiating."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, RobustSSLError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
