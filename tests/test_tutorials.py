"""The extending page's code runs as written: its flip-prediction task trains through the
Pretrainer and its R+FGSM attack stays in the ε-ball (docs/extending.md)."""

import re
from pathlib import Path

import torch

import robust_ssl.attacks as attacks
from robust_ssl.pretrain import Pretrainer

PAGE = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def tutorial_code(heading: str) -> str:
    section = PAGE.read_text().split(f"## Tutorial: {heading}")[1].split("\n## ")[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)[0]


def test_the_pretext_tutorials_task_learns_through_the_pretrainer():
    namespace: dict = {}
    exec(tutorial_code("a pretext task"), namespace)
    torch.manual_seed(0)
    model = Pretrainer([namespace["FlipTask"]()], backbone="resnet18", stem="imagenet")
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    images[:, :, :, :16] = 0  # a dark left half: mirroring is visible
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss = model.loss(images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert model.tasks[0].head.out_features == 2
    assert losses[-1] < 0.5 * losses[0], losses


def test_the_attack_tutorials_rfgsm_stays_in_the_ball_and_in_range():
    namespace = vars(attacks).copy()
    exec(tutorial_code("an attack"), namespace)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    x, y = torch.rand(32, 3, 8, 8), torch.randint(0, 4, (32,))
    adversarial = namespace["RFGSM"](8 / 255)(model, x, y)
    assert (adversarial - x).abs().max() <= 8 / 255 + 1e-6
    assert 0 <= adversarial.min() and adversarial.max() <= 1
    assert not torch.equal(adversarial, x)
