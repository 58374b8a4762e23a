"""Two gloo processes with gathered projections equal one process on the concatenated batch."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from robust_ssl.pretrain.losses import nt_xent

N, D, WORLD = 8, 6, 2


def make_problem():
    torch.manual_seed(0)
    model = torch.nn.Linear(D, 4)
    return model, torch.randn(N, D), torch.randn(N, D)


def worker(rank: int, port: int, out: str, gather: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    model, x_a, x_b = make_problem()
    ddp = DistributedDataParallel(model)
    rows = slice(rank * N // WORLD, (rank + 1) * N // WORLD)
    loss = nt_xent(ddp(x_a[rows]), ddp(x_b[rows]), temperature=0.3, gather_distributed=gather)
    loss.backward()
    mean_loss = loss.detach().clone()
    dist.all_reduce(mean_loss)
    if rank == 0:
        torch.save({"loss": mean_loss / WORLD, "grads": [p.grad for p in model.parameters()]}, out)
    # Teardown in order: the DDP reducer holds the process group, and a group torn down at
    # interpreter exit while one rank still talks to it can abort that rank. Even so, gloo's
    # threads sometimes abort in the interpreter's exit ("terminate called without an active
    # exception", SIGABRT, twice in CI): the results are saved, so leave without destructors.
    del ddp
    dist.barrier()
    dist.destroy_process_group()
    os._exit(0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_processes(tmp_path, gather: bool) -> dict:
    out = str(tmp_path / f"rank0-{gather}.pt")
    mp.spawn(worker, args=(free_port(), out, gather), nprocs=WORLD, join=True)
    return torch.load(out)


def single_process() -> tuple[torch.Tensor, list[torch.Tensor]]:
    model, x_a, x_b = make_problem()
    loss = nt_xent(model(x_a), model(x_b), temperature=0.3)
    loss.backward()
    return loss.detach(), [p.grad for p in model.parameters()]


def test_two_process_gather_equals_single_process(tmp_path):
    distributed = two_processes(tmp_path, gather=True)
    loss, grads = single_process()
    torch.testing.assert_close(distributed["loss"], loss)
    for got, expected in zip(distributed["grads"], grads):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_without_gather_the_two_processes_differ_from_one(tmp_path):
    """Control for the test above, through the same two processes: without the gather each
    rank contrasts against its own half of the batch only, and the comparison sees it."""
    distributed = two_processes(tmp_path, gather=False)
    loss, grads = single_process()
    assert not torch.allclose(distributed["loss"], loss)
    assert not all(torch.allclose(g, e, rtol=1e-5, atol=1e-6)
                   for g, e in zip(distributed["grads"], grads))


def queue_and_barlow_worker(rank: int, port: int, folder: str) -> None:
    """Each rank pushes its half of the keys into MoCo's queue (gathered), and computes Barlow
    Twins' loss on its half of the projections (cross-correlation averaged over ranks)."""
    from robust_ssl.pretrain.losses import barlow_twins_loss
    from robust_ssl.pretrain.moco import KeyQueue

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    torch.manual_seed(0)
    queue, keys = KeyQueue(size=12, dim=D), torch.randn(N, D)
    z_a, z_b = torch.randn(N, D), torch.randn(N, D)
    rows = slice(rank * N // WORLD, (rank + 1) * N // WORLD)
    queue.push(keys[rows], gather_distributed=True)
    loss = barlow_twins_loss(z_a[rows], z_b[rows], lambda_=0.1, gather_distributed=True)
    torch.save({"queue": queue.keys, "pointer": queue.pointer, "loss": loss.detach()},
               f"{folder}/rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()
    os._exit(0)


def test_moco_queues_stay_equal_across_ranks_and_barlow_twins_averages_correlations(tmp_path):
    from robust_ssl.pretrain.losses import _standardise
    from robust_ssl.pretrain.moco import KeyQueue

    mp.spawn(queue_and_barlow_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD,
             join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    torch.manual_seed(0)
    queue, keys = KeyQueue(size=12, dim=D), torch.randn(N, D)
    z_a, z_b = torch.randn(N, D), torch.randn(N, D)
    queue.push(keys)  # one process pushing every rank's keys, in rank order
    halves = [slice(r * N // WORLD, (r + 1) * N // WORLD) for r in range(WORLD)]
    c = sum(_standardise(z_a[h]).T @ _standardise(z_b[h]) / len(z_a[h]) for h in halves) / WORLD
    expected = (torch.diagonal(c) - 1).pow(2).sum() + 0.1 * (c.pow(2).sum()
                                                             - torch.diagonal(c).pow(2).sum())
    for rank in ranks:
        torch.testing.assert_close(rank["queue"], queue.keys)
        assert int(rank["pointer"]) == N
        torch.testing.assert_close(rank["loss"], expected)
