"""Fine-tuning throughput: training images per second through one optimiser step, per mode.

Usage: python benchmarks/finetune_throughput.py [--stem imagenet] [--batch 128] [--steps 5]
       [--device cpu|cuda]
Modes: a clean linear probe on cached features (the encoder ran once, beforehand; its one-off
cost is printed as "encode once"), the same probe re-encoding every batch, the adversarial
linear probe (FGSM against the current model, then clean + adversarial forward) and full
adversarial fine-tuning (the supervised baseline's step). The first step is a warm-up.
"""

import argparse
import time

import torch

from robust_ssl.finetune import FineTuner
from robust_ssl.models.features import encode

MODES = {
    "probe, cached features": dict(freeze="linear", adversarial=False, cache_features=True),
    "probe, re-encoding": dict(freeze="linear", adversarial=False, cache_features=False),
    "probe, FGSM": dict(freeze="linear", adversarial=True),
    "full, FGSM": dict(freeze="full", adversarial=True),
}


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def images_per_second(model: FineTuner, inputs: torch.Tensor, labels: torch.Tensor,
                      steps: int, device: str) -> float:
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)

    def step():
        loss = model.training_step((inputs, labels), 0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return len(labels) * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stem", default="imagenet")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(f"device={args.device} stem={args.stem} batch={args.batch} steps={args.steps} "
          f"threads={torch.get_num_threads()}")
    torch.manual_seed(0)
    images = torch.rand(args.batch, 3, 32, 32, device=args.device)
    labels = torch.randint(0, 10, (args.batch,), device=args.device)
    for mode, kwargs in MODES.items():
        model = FineTuner(stem=args.stem, **kwargs).to(args.device)
        model.log = lambda *a, **k: None  # outside a Trainer
        inputs = images
        if model.caches_features:
            encode(model.encoder, images[:8])  # warm-up
            synchronize(args.device)
            start = time.perf_counter()
            inputs = encode(model.encoder, images, normalize=False)
            synchronize(args.device)
            rate = len(images) / (time.perf_counter() - start)
            print(f"{'encode once':24s} {rate:10,.0f} images/s")
        rate = images_per_second(model, inputs, labels, args.steps, args.device)
        print(f"{mode:24s} {rate:10,.0f} images/s")


if __name__ == "__main__":
    main()
