"""Features of a whole split through an encoder, in eval mode: what the kNN monitor compares and
what a clean linear probe trains on (computed once instead of every epoch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def encode(encoder: torch.nn.Module, images: torch.Tensor, batch_size: int = 512,
           normalize: bool = True) -> torch.Tensor:
    """Features (L2-normalised by default) of uint8 or [0, 1] images, in eval mode, computed
    on the encoder's device."""
    device = next(encoder.parameters()).device
    modes = {module: module.training for module in encoder.modules()}
    encoder.eval()
    features = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device)
        batch = batch.float().div_(255) if batch.dtype == torch.uint8 else batch
        output = encoder(batch).float()
        features.append(F.normalize(output, dim=1) if normalize else output)
    for module, training in modes.items():  # restore each module's own mode (frozen parts!)
        module.training = training
    return torch.cat(features)
