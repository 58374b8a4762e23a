"""Weighted k-nearest-neighbour classification of encoder features (Wu et al. 2018).

The usual monitor of self-supervised pretraining: it needs no training, so it shows whether the
features separate the classes while pretraining runs.
"""

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


@torch.no_grad()
def knn_predict(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor,
                num_classes: int, k: int = 200, temperature: float = 0.1,
                chunk: int = 1024) -> torch.Tensor:
    """Predicted labels: the k most cosine-similar bank features vote with weight exp(sim/τ)."""
    k = min(k, len(bank))
    predictions = []
    for start in range(0, len(queries), chunk):
        similarity = queries[start:start + chunk] @ bank.T
        top_sim, top_index = similarity.topk(k, dim=1)
        votes = torch.zeros(len(top_sim), num_classes, device=bank.device)
        votes.scatter_add_(1, bank_labels[top_index], (top_sim / temperature).exp())
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions)


def knn_accuracy(encoder: torch.nn.Module, bank_images: torch.Tensor, bank_labels: torch.Tensor,
                 query_images: torch.Tensor, query_labels: torch.Tensor, k: int = 200,
                 temperature: float = 0.1) -> float:
    """Top-1 accuracy in [0, 1] of the weighted kNN classifier; features computed once."""
    bank = encode(encoder, bank_images)
    queries = encode(encoder, query_images)
    num_classes = int(max(bank_labels.max(), query_labels.max())) + 1
    predicted = knn_predict(bank, bank_labels.to(bank.device), queries, num_classes, k,
                            temperature)
    return (predicted.cpu() == query_labels.cpu()).float().mean().item()
