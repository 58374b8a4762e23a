import torch
import torch.nn.functional as F

from robust_ssl.models.features import encode
from robust_ssl.pretrain.knn import knn_accuracy, knn_predict


def naive_knn(bank, bank_labels, queries, num_classes, k, temperature):
    predictions = []
    for q in queries:
        sims = [(F.cosine_similarity(q, b, dim=0).item(), int(y)) for b, y in zip(bank, bank_labels)]
        sims.sort(key=lambda s: -s[0])
        votes = [0.0] * num_classes
        for sim, label in sims[:k]:
            votes[label] += torch.exp(torch.tensor(sim / temperature)).item()
        predictions.append(max(range(num_classes), key=lambda c: votes[c]))
    return predictions


def test_matches_naive_weighted_knn():
    torch.manual_seed(0)
    bank = F.normalize(torch.randn(60, 8), dim=1)
    labels = torch.randint(0, 4, (60,))
    queries = F.normalize(torch.randn(25, 8), dim=1)
    for k in (1, 5, 60):
        fast = knn_predict(bank, labels, queries, 4, k=k, temperature=0.1, chunk=7)
        assert fast.tolist() == naive_knn(bank, labels, queries, 4, k, 0.1)


def test_k_larger_than_bank_is_clipped():
    bank = F.normalize(torch.randn(5, 3), dim=1)
    assert knn_predict(bank, torch.arange(5) % 2, bank, 2, k=200).shape == (5,)


class Identity(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x.flatten(1)


def test_accuracy_on_separable_features_and_chance_on_noise():
    torch.manual_seed(1)
    centres = torch.rand(3, 3, 1, 1)
    labels = torch.arange(300) % 3
    images = (centres[labels] + 0.05 * torch.randn(300, 3, 4, 4)).clamp(0, 1)
    assert knn_accuracy(Identity(), images[:200], labels[:200], images[200:], labels[200:],
                        k=20) == 1.0
    noise = torch.rand(300, 3, 4, 4)
    assert knn_accuracy(Identity(), noise[:200], labels[:200], noise[200:], labels[200:],
                        k=20) < 0.6


def test_encode_accepts_uint8_and_restores_every_module_mode():
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.BatchNorm1d(12),
                                  torch.nn.BatchNorm1d(12)).train()
    encoder[2].eval()  # a frozen part must stay in eval mode afterwards
    images = torch.randint(0, 256, (10, 3, 2, 2), dtype=torch.uint8)
    features = encode(encoder, images, batch_size=4)
    assert features.shape == (10, 12)
    torch.testing.assert_close(features.norm(dim=1), torch.ones(10))
    assert [m.training for m in encoder] == [True, True, False]
