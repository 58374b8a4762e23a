import math

import pytest
import torch
import torch.nn.functional as F

from robust_ssl.pretrain.losses import nt_xent


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
