"""Small heads that sit on the encoder's 512-d features."""

from torch import nn


class ProjectionHead(nn.Sequential):
    """SimCLR's g(·): an MLP with one hidden ReLU layer, z = W2 σ(W1 h) (paper, section 3.1)."""

    def __init__(self, in_dim: int = 512, hidden_dim: int = 512, out_dim: int = 128):
        super().__init__(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True),
                         nn.Linear(hidden_dim, out_dim))
