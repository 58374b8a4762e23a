"""Lightning's WandbLogger without the argument wandb no longer takes.

PL 2.6 passes `anonymous` to every wandb.init, and wandb (0.31 here) warns "The anonymous setting
has no effect" for it, once in every cell's log. The argument is dropped before the run starts;
everything else is Lightning's."""

from pytorch_lightning.loggers import WandbLogger as LightningWandbLogger


class WandbLogger(LightningWandbLogger):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._wandb_init.pop("anonymous", None)
