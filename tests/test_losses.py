import math

import pytest
import torch
import torch.nn.functional as F

from robust_ssl.pretrain.losses import barlow_twins_loss, byol_loss, info_nce_with_queue, nt_xent


def naive_nt_xent(z_a, z_b, temperature):
    """The paper's l_{i,j}, anchor by anchor, averaged over all 2N anchors."""
    z = torch.cat([z_a, z_b])
    n2 = len(z)
    total = 0.0
    for i in range(n2):
        j = (i + n2 // 2) % n2
        sim = [F.cosine_similarity(z[i], z[k], dim=0) / temperature for k in range(n2)]
        denominator = sum(torch.exp(sim[k]) for k in range(n2) if k != i)
        total = total - torch.log(torch.exp(sim[j]) / denominator)
    return total / n2


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_matches_naive_double_loop_in_value_and_gradient(temperature):
    torch.manual_seed(0)
    z_a = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    z_b = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    fast = nt_xent(z_a, z_b, temperature)
    grad_fast = torch.autograd.grad(fast, (z_a, z_b))
    slow = naive_nt_xent(z_a, z_b, temperature)
    grad_slow = torch.autograd.grad(slow, (z_a, z_b))
    torch.testing.assert_close(fast, slow.float(), rtol=1e-5, atol=1e-6)
    for g_fast, g_slow in zip(grad_fast, grad_slow):
        torch.testing.assert_close(g_fast, g_slow, rtol=1e-4, atol=1e-6)


def test_invariant_to_permuting_pairs_and_scaling_embeddings():
    torch.manual_seed(1)
    z_a, z_b = torch.randn(8, 16), torch.randn(8, 16)
    base = nt_xent(z_a, z_b)
    order = torch.randperm(8)
    torch.testing.assert_close(nt_xent(z_a[order], z_b[order]), base)
    scales = torch.rand(8, 1) * 10 + 0.1
    torch.testing.assert_close(nt_xent(z_a * scales, z_b * 3.0), base)
    torch.testing.assert_close(nt_xent(z_b, z_a), base)  # the two views play symmetric roles


def test_perfect_pairs_give_lower_loss_than_random_and_chance_level_is_log():
    torch.manual_seed(2)
    z = torch.randn(32, 64)
    aligned = nt_xent(z, z + 0.01 * torch.randn_like(z), temperature=0.1)
    random = nt_xent(z, torch.randn(32, 64), temperature=0.1)
    assert aligned < random
    # Identical embeddings everywhere: every candidate is as likely, loss = log(2N - 1).
    same = torch.ones(4, 3)
    torch.testing.assert_close(nt_xent(same, same), torch.tensor(math.log(7)))


def test_bf16_inputs_and_autocast_give_finite_fp32_loss():
    torch.manual_seed(3)
    z_a, z_b = torch.randn(16, 128), torch.randn(16, 128)
    reference = nt_xent(z_a, z_b)
    low = nt_xent(z_a.bfloat16(), z_b.bfloat16())
    assert low.dtype == torch.float32 and torch.isfinite(low)
    torch.testing.assert_close(low, reference, rtol=2e-2, atol=2e-2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layer = torch.nn.Linear(128, 128)
        auto = nt_xent(layer(z_a), layer(z_b))
    assert auto.dtype == torch.float32 and torch.isfinite(auto)


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="two N×D tensors"):
        nt_xent(torch.randn(4, 8), torch.randn(5, 8))


# ---- BYOL, Barlow Twins, MoCo: each against lightly's loss (the reference the issue names) and
# a naive formula of our own.

def test_byol_loss_is_two_minus_two_cosine_and_matches_lightly():
    lightly_loss = pytest.importorskip("lightly.loss")
    torch.manual_seed(0)
    p, z = torch.randn(6, 5, requires_grad=True), torch.randn(6, 5, requires_grad=True)
    loss = byol_loss(p, z)
    naive = sum(2 - 2 * F.cosine_similarity(p[i], z[i], dim=0) for i in range(6)) / 6
    torch.testing.assert_close(loss, naive)
    torch.testing.assert_close(loss, 2 + 2 * lightly_loss.NegativeCosineSimilarity()(p, z))
    loss.backward()
    assert p.grad.abs().sum() > 0 and z.grad is None  # the target gets no gradient


def naive_barlow_twins(z_a, z_b, lambda_):
    """Zbontar et al.'s algorithm 1, element by element."""
    n, d = z_a.shape
    a = (z_a - z_a.mean(0)) / torch.sqrt(z_a.var(0, unbiased=False) + 1e-5)
    b = (z_b - z_b.mean(0)) / torch.sqrt(z_b.var(0, unbiased=False) + 1e-5)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(a[k, i] * b[k, j] for k in range(n)) / n
            loss = loss + ((1 - c) ** 2 if i == j else lambda_ * c ** 2)
    return loss


@pytest.mark.parametrize("lambda_", [5e-3, 0.5])
def test_barlow_twins_loss_matches_the_paper_and_lightly_in_value_and_gradient(lambda_):
    lightly_loss = pytest.importorskip("lightly.loss")
    torch.manual_seed(0)
    z_a, z_b = torch.randn(8, 4, requires_grad=True), torch.randn(8, 4)
    loss = barlow_twins_loss(z_a, z_b, lambda_)
    torch.testing.assert_close(loss, naive_barlow_twins(z_a, z_b, lambda_))
    theirs = lightly_loss.BarlowTwinsLoss(lambda_param=lambda_)(z_a, z_b)
    torch.testing.assert_close(loss, theirs)
    ours_grad, = torch.autograd.grad(loss, z_a)
    their_grad, = torch.autograd.grad(theirs, z_a)
    torch.testing.assert_close(ours_grad, their_grad)


def test_barlow_twins_loss_is_zero_for_identical_decorrelated_views():
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert barlow_twins_loss(z, z, lambda_=1.0) < 1e-4
    assert barlow_twins_loss(z, -z, lambda_=1.0) > 7.9  # anti-correlated: (1 − (−1))² per dim


def naive_info_nce(q, k, queue, temperature):
    q, k, queue = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    total = 0.0
    for i in range(len(q)):
        positive = torch.exp(q[i] @ k[i] / temperature)
        negatives = sum(torch.exp(q[i] @ n / temperature) for n in queue)
        total = total - torch.log(positive / (positive + negatives))
    return total / len(q)


def test_info_nce_with_a_queue_matches_a_naive_loop_and_lightlys_memory_bank_over_steps():
    """Three steps, each enqueuing its keys: the loss and its gradient equal lightly's
    NTXentLoss with a memory bank of the same initial content, so the queues move alike."""
    lightly_loss = pytest.importorskip("lightly.loss")
    from robust_ssl.pretrain.moco import KeyQueue

    torch.manual_seed(0)
    queue, theirs = KeyQueue(12, 5), lightly_loss.NTXentLoss(0.2, memory_bank_size=(12, 5))
    queue.keys.copy_(theirs.memory_bank.bank)
    for step in range(3):
        q, k = torch.randn(4, 5, requires_grad=True), torch.randn(4, 5)
        loss = info_nce_with_queue(q, k, queue.keys, temperature=0.2)
        torch.testing.assert_close(loss, naive_info_nce(q, k, queue.keys, 0.2))
        reference = theirs(q, k)
        torch.testing.assert_close(loss, reference)
        torch.testing.assert_close(torch.autograd.grad(loss, q)[0],
                                   torch.autograd.grad(reference, q)[0])
        queue.push(k)
    torch.testing.assert_close(queue.keys, theirs.memory_bank.bank)
