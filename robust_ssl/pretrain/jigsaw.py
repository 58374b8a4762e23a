"""Jigsaw puzzles (Noroozi & Favaro 2017), adapted to 32×32 images.

The image is cut into grid×grid cells; from each cell a tile smaller by `jitter` pixels is cut
at a random offset (so the network cannot match tile edges); the tiles are shuffled by one
permutation of a fixed set, and the permutation's index is predicted from the concatenated
features of the tiles.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from robust_ssl.data.augment import to_unit_float


def permutation_set(tiles: int, size: int, seed: int = 0) -> torch.Tensor:
    """`size` permutations of range(tiles), chosen greedily for maximal minimum Hamming distance.

    Noroozi & Favaro's selection: start from a random permutation, then repeatedly add the one
    farthest (in its minimum Hamming distance) from those already chosen.
    """
    candidates = torch.tensor(list(itertools.permutations(range(tiles))), dtype=torch.int8)
    if not 1 <= size <= len(candidates):
        raise ValueError(f"{size} permutations requested; {tiles} tiles have {len(candidates)}")
    generator = torch.Generator().manual_seed(seed)
    chosen = [int(torch.randint(len(candidates), (1,), generator=generator))]
    min_distance = (candidates != candidates[chosen[0]]).sum(1)
    for _ in range(size - 1):
        chosen.append(int(min_distance.argmax()))
        min_distance = torch.minimum(min_distance, (candidates != candidates[chosen[-1]]).sum(1))
    return candidates[chosen].long()


def cut_tiles(images: torch.Tensor, grid: int, jitter: int) -> torch.Tensor:
    """N×C×H×W -> N×grid²×C×t×t, t = H // grid − jitter, each tile at its own random offset."""
    n, c, h, w = images.shape
    cell = min(h, w) // grid
    size = cell - jitter
    offsets = torch.randint(0, jitter + 1, (n, grid * grid, 2), device=images.device)
    rows = torch.arange(grid, device=images.device).repeat_interleave(grid) * cell
    cols = torch.arange(grid, device=images.device).repeat(grid) * cell
    top = rows + offsets[..., 0]                        # N × grid²
    left = cols + offsets[..., 1]
    span = torch.arange(size, device=images.device)
    y = (top[..., None] + span)[..., :, None]           # N × grid² × t × 1
    x = (left[..., None] + span)[..., None, :]          # N × grid² × 1 × t
    batch = torch.arange(n, device=images.device).view(n, 1, 1, 1)
    tiles = images.permute(0, 2, 3, 1)[batch, y, x]     # N × grid² × t × t × C
    return tiles.permute(0, 1, 4, 2, 3)


class JigsawTask(nn.Module):
    """Classify which of `num_permutations` permutations shuffled the tiles."""

    name = "jigsaw"

    def __init__(self, grid: int = 2, jitter: int = 2, num_permutations: int = 24,
                 hidden_dim: int = 512, seed: int = 0):
        super().__init__()
        self.grid, self.jitter = grid, jitter
        self.register_buffer("permutations", permutation_set(grid * grid, num_permutations, seed))
        self.hidden_dim = hidden_dim
        self.head: nn.Sequential | None = None

    def bind(self, encoder: nn.Module) -> None:
        """The head reads the grid² tiles' features side by side."""
        self.feature_dim = encoder.feature_dim
        self.head = nn.Sequential(nn.Linear(self.grid ** 2 * self.feature_dim, self.hidden_dim),
                                  nn.ReLU(inplace=True),
                                  nn.Linear(self.hidden_dim, len(self.permutations)))

    def puzzle(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shuffled tiles N×grid²×C×t×t and the index of the permutation used for each image."""
        tiles = cut_tiles(to_unit_float(images), self.grid, self.jitter)
        labels = torch.randint(len(self.permutations), (len(tiles),), device=tiles.device)
        order = self.permutations[labels]                 # position i shows tile order[i]
        return tiles[torch.arange(len(tiles), device=tiles.device)[:, None], order], labels

    def loss(self, encoder: nn.Module, images: torch.Tensor) -> torch.Tensor:
        shuffled, labels = self.puzzle(images)
        n, k = shuffled.shape[:2]
        features = encoder(shuffled.flatten(0, 1)).view(n, k * self.feature_dim)
        return F.cross_entropy(self.head(features), labels)
