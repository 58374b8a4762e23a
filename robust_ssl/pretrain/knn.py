"""Weighted k-nearest-neighbour classification of encoder features (Wu et al. 2018).

The usual monitor of self-supervised pretraining: it needs no training, so it shows whether the
features separate the classes while pretraining runs.
"""

from __future__ import annotations

import torch

from robust_ssl.models.features import encode


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
