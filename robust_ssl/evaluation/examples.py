"""What an adversarial example looks like: a few fixed test images, clean and under the
evaluation's FGSM and PGD at the table's ε, each with the class the classifier gives it.

Written beside the result as `<name>.examples.png` (and logged to W&B); the images are the
first of each class in the evaluated test split, in turn, so every cell of a table shows the
same ones.
"""

from __future__ import annotations

from pathlib import Path

import torch

from robust_ssl.plumbing.files import replace_atomically

COUNT = 8


def chosen(labels: torch.Tensor, count: int = COUNT) -> torch.Tensor:
    """Indices of `count` images: the first of each class, then the second of each, ..."""
    rank = torch.zeros_like(labels)
    for label in labels.unique():
        where = (labels == label).nonzero().flatten()
        rank[where] = torch.arange(len(where), device=labels.device)
    order = sorted(range(len(labels)), key=lambda i: (int(rank[i]), int(labels[i])))
    return torch.tensor(order[:count], dtype=torch.long)


def panel_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f"{output.stem}.examples.png")


@torch.no_grad()
def predictions(classifier: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return classifier(x).argmax(1)


def draw(classifier: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
         classes: list[str], attacks: dict, path: Path, title: str) -> Path:
    """A grid: a column per image, a row for clean and each of `attacks` (name -> Attack);
    each image titled with its predicted class, green when right, red when wrong."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classifier.eval()
    rows = {"clean": images}
    with torch.inference_mode(False), torch.enable_grad():
        for name, attack in attacks.items():
            rows[name] = attack(classifier, images.clone(), labels.clone()).detach()
    figure, axes = plt.subplots(len(rows), len(images), squeeze=False,
                                figsize=(1.3 * len(images), 1.5 * len(rows) + 0.5))
    for r, (name, batch) in enumerate(rows.items()):
        predicted = predictions(classifier, batch)
        for c in range(len(images)):
            axis = axes[r][c]
            axis.imshow(batch[c].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            axis.set_xticks([]), axis.set_yticks([])
            right = bool(predicted[c] == labels[c])
            axis.set_title(classes[int(predicted[c])], fontsize=7,
                           color="tab:green" if right else "tab:red")
            if c == 0:
                axis.set_ylabel(name, fontsize=8)
            if r == len(rows) - 1:
                axis.set_xlabel(f"true: {classes[int(labels[c])]}", fontsize=7)
    figure.suptitle(title, fontsize=8)
    figure.tight_layout()
    replace_atomically(path, lambda partial: figure.savefig(partial, dpi=100, format="png"))
    plt.close(figure)
    return path
