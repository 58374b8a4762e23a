"""Small heads that sit on the encoder's 512-d features."""

from torch import nn


class ProjectionHead(nn.Sequential):
    """SimCLR's g(·): an MLP with one hidden ReLU layer, z = W2 σ(W1 h) (paper, section 3.1).

    `num_layers` linear layers, every hidden one followed by a BatchNorm (`batch_norm`: BYOL's
    projector and predictor, Barlow Twins' projector) and a ReLU; MoCo v2's head is SimCLR's.
    """

    def __init__(self, in_dim: int = 512, hidden_dim: int = 512, out_dim: int = 128,
                 batch_norm: bool = False, num_layers: int = 2):
        layers: list[nn.Module] = []
        for i in range(num_layers - 1):
            layers.append(nn.Linear(in_dim if i == 0 else hidden_dim, hidden_dim,
                                    bias=not batch_norm))
            layers += [nn.BatchNorm1d(hidden_dim)] if batch_norm else []
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Linear(hidden_dim if num_layers > 1 else in_dim, out_dim))
        super().__init__(*layers)
