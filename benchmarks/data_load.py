"""Seconds to decode a dataset and to load it back from the cache, with per-class counts.

Usage: python benchmarks/data_load.py --data-dir DATA_DIR [--dataset cifar10]
The cache goes to a fresh temporary directory, so the first load always decodes.
"""

import argparse
import tempfile
import time

import torch

from robust_ssl.data import load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", default="cifar10")
    args = parser.parse_args()
    print(f"dataset={args.dataset} data_dir={args.data_dir} threads={torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as cache_dir:
        for split in ("train", "test"):
            start = time.perf_counter()
            decoded = load_split(args.dataset, split, args.data_dir, cache_dir=cache_dir)
            decode_s = time.perf_counter() - start
            start = time.perf_counter()
            cached = load_split(args.dataset, split, args.data_dir, cache_dir=cache_dir)
            cache_s = time.perf_counter() - start
            assert torch.equal(decoded.images, cached.images)
            counts = torch.bincount(decoded.labels, minlength=len(decoded.classes)).tolist()
            print(f"{split}: {len(decoded)} images {tuple(decoded.images.shape[1:])}, "
                  f"decode+cache {decode_s:.2f} s, from cache {cache_s:.2f} s")
            print(f"  per class: {dict(zip(decoded.classes, counts))}")


if __name__ == "__main__":
    main()
