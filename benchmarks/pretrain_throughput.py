"""SimCLR pretraining throughput: augmented views per second through a full training step.

Usage: python benchmarks/pretrain_throughput.py [--stem cifar strided imagenet] [--batch 256]
       [--steps 5] [--device cpu|cuda] [--bf16]
A step is augmentation, encoder + projection forward on both views, NT-Xent, backward and an
SGD update; the first step is a warm-up and is not timed.
"""

import argparse
import time

import torch

from robust_ssl.pretrain import Pretrainer, SimCLRTask


def views_per_second(stem: str, batch: int, steps: int, device: str, bf16: bool) -> float:
    model = Pretrainer([SimCLRTask()], stem=stem).to(device)
    if device == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=device)

    def step():
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss(images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stem", nargs="+", default=["cifar", "strided", "imagenet"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()
    print(f"device={args.device} batch={args.batch} steps={args.steps} bf16={args.bf16} "
          f"threads={torch.get_num_threads()}")
    for stem in args.stem:
        rate = views_per_second(stem, args.batch, args.steps, args.device, args.bf16)
        print(f"stem={stem:9s} {rate:8,.0f} views/s")


if __name__ == "__main__":
    main()
