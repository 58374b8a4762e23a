"""The RobustSSL benchmark's published leaderboard (CIFAR-10 pretraining, CIFAR-10 fine-tuning), as
data: every row with the policy, clean accuracy, standard AutoAttack accuracy at 8/255 and the
mean accuracy under common corruptions (CIFAR-10-C, severities 1-5) where it was published.

Source: the leaderboard's page data, repository RobustSSL/RobustSSL.github.io,
`leaderboard/cifar10-cifar10-{SLF,ALF,AFF}.js` at commit 7a45d66 (2023-12-12): `sa1` clean,
`ra1` AutoAttack, `ca1` corruptions (0 = not published); the page's own labels name the
paper, the method names here are the benchmark's model zoo's (its README). Their protocol:
robust_ssl/runs/grid.py's ROBUSTSSL_POLICIES and experiments/protocols/robustssl/.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = ("RobustSSL/RobustSSL.github.io, leaderboard/cifar10-cifar10-<policy>.js, commit "
          "7a45d66 (2023-12-12)")


@dataclass(frozen=True)
class Published:
    method: str
    paper: str  # the first author and venue, as the leaderboard links it
    policy: str
    clean: float
    autoattack: float
    corruptions: float | None  # not published for every row
    note: str = ""


AIR, DYNACL, RCS = "Xu et al., NeurIPS 2023 (AIR)", "Luo et al., ICLR 2023", "Xu et al., NeurIPS 2023 (RCS)"
DEACL, ADVCL, AINFONCE = "Zhang et al., ECCV 2022", "Fan et al., NeurIPS 2021", "Yu et al., ECCV 2022"
ACL, ROCL, TARGETED = "Jiang et al., NeurIPS 2020", "Kim et al., NeurIPS 2020", "Kim et al., NeurIPS 2023"
POST = "with post-processing"
IMAGENET = "pseudo-labels from ImageNet-1K pretrained models"
COPIED = "code not released; the leaderboard copies the paper's numbers"

ROWS = (
    Published("DynACL-AIR++", AIR, "SLF", 81.80, 46.99, 72.11, POST),
    Published("DynACL++", DYNACL, "SLF", 79.82, 46.54, 71.96, POST),
    Published("DynACL-AIR", AIR, "SLF", 78.08, 45.17, 70.51),
    Published("DynACL", DYNACL, "SLF", 75.41, 45.09, 68.67),
    Published("DynACL-RCS", RCS, "SLF", 77.14, 44.29, 69.56),
    Published("DeACL", DEACL, "SLF", 79.94, 43.27, 73.06),
    Published("AdvCL", ADVCL, "SLF", 82.36, 43.18, 73.14, IMAGENET),
    Published("A-InfoNCE", AINFONCE, "SLF", 83.70, 42.72, 74.09, IMAGENET),
    Published("ACL", ACL, "SLF", 78.22, 39.17, 70.72),
    Published("targeted attacks", TARGETED, "SLF", 78.45, 35.81, None, COPIED),
    Published("RoCL", ROCL, "SLF", 77.90, 26.12, None),
    Published("DynACL-AIR++", AIR, "ALF", 79.56, 48.23, 71.74, POST),
    Published("DynACL++", DYNACL, "ALF", 78.81, 47.98, 70.89, POST),
    Published("DynACL-AIR", AIR, "ALF", 77.42, 46.14, 69.97),
    Published("DynACL-RCS", RCS, "ALF", 74.95, 45.75, 67.84),
    Published("DynACL", DYNACL, "ALF", 72.97, 45.67, 66.69),
    Published("AdvCL", ADVCL, "ALF", 80.04, 44.05, 71.50, IMAGENET),
    Published("A-InfoNCE", AINFONCE, "ALF", 80.30, 43.28, 71.61, IMAGENET),
    Published("DeACL", DEACL, "ALF", 77.71, 41.99, 71.66),
    Published("ACL", ACL, "ALF", 75.53, 40.60, 68.56),
    Published("RoCL", ROCL, "ALF", 75.62, 29.69, None),
    Published("DynACL-AIR++", AIR, "AFF", 82.36, 50.79, 73.56, POST),
    Published("DynACL-AIR", AIR, "AFF", 82.74, 50.58, 74.00),
    Published("DynACL", DYNACL, "AFF", 81.86, 50.52, 72.81),
    Published("DynACL++", DYNACL, "AFF", 81.93, 50.34, 73.07, POST),
    Published("A-InfoNCE", AINFONCE, "AFF", 82.99, 49.73, 73.80, IMAGENET),
    Published("DynACL-RCS", RCS, "AFF", 80.70, 49.63, 72.39),
    Published("AdvCL", ADVCL, "AFF", 83.00, 49.61, 73.91, IMAGENET),
    Published("ACL", ACL, "AFF", 81.25, 49.60, 72.50),
    Published("RoCL", ROCL, "AFF", 78.51, 45.02, None),
    Published("DeACL", DEACL, "AFF", 78.29, 44.96, 69.29),
)


def rows(policy: str) -> list[Published]:
    return [row for row in ROWS if row.policy == policy]


def row(method: str, policy: str) -> Published:
    return next(r for r in ROWS if r.method == method and r.policy == policy)
