"""The paper profile, rehearsed end to end on generated data: Tables 1 and 2 and the RobustSSL
protocol (with an encoder file in ACL's layout; its cells are Table 3's adversarial encoder and
paper-scale PGD-10 and TRADES fine-tuning, whose table the smoke tier runs) run their paper
configs (CIFAR stem, AutoAttack, corruptions; bf16-mixed and batch 256 on a GPU, float32 and
batch 8 on a CPU) cut to a couple of batches, so a paper YAML that cannot run fails here, on a
CPU; the curve's rehearsal runs in the quick profile."""

import json
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from robust_ssl.runs import rehearsal
from tests.conftest import write_cifar_files, write_image_folder
from tests.test_layouts import acl_keys, torchvision_weights

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_paper_profile_rehearses_its_tables_its_protocol_and_the_curve(tmp_path):
    data = tmp_path / "data"
    write_cifar_files(data, "cifar100", train=600, test=20)  # one batch of 256, twice
    # 40 test images a class: the quick profile evaluates on a stratified 10% of them
    write_image_folder(data / "cifar10", {"train": 64, "test": 40})
    results, minutes = tmp_path / "results", {}
    # the paper's Tables 1 and 2 and its protocol; the curve's paths (segments continuing each
    # other) rehearsed in the quick profile, which costs a minute where the paper's costs six
    # (the projection of the real run's cost that ends a rehearsal once, after the quick curve:
    # the paper's times bf16 steps, which a CPU without bf16 units emulates, 10 minutes here)
    torch.save({"state_dict": acl_keys(torchvision_weights(), 2, 1)}, tmp_path / "ACL_DS.pt")
    for target, profile, extra in (("table1", "paper", ["PROJECTION=0"]),
                                   ("table2", "paper", ["PROJECTION=0"]),
                                   ("robustssl", "paper", ["PROJECTION=0", "OURS=adv_simclr",
                                                           f"ENCODERS=acl={tmp_path / 'ACL_DS.pt'}"]),
                                   ("curve", "quick", ["CURVE_EPOCHS=1 2", "SUPERVISED_EPOCHS=1"])):
        start = time.perf_counter()
        # one cell at a time (JOBS=1): two at once on two cores, each keeping a lone cell's two
        # threads, ran a ResNet-18 step 3.6x slower each (1.84 s against 0.51 s, measured)
        made = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), target,
                               f"PROFILE={profile}", "REHEARSE=1", f"DATA_DIR={data}",
                               f"RESULTS={results}", "WANDB=off", *extra],
                              capture_output=True, text=True, timeout=1500)
        minutes[target] = (time.perf_counter() - start) / 60
        assert made.returncode == 0, made.stdout[-4000:] + made.stderr[-3000:]
        assert "0 failed" in made.stdout
        table = (results / f"{profile}-rehearsal" / f"{target}.md").read_text()
        assert table.startswith("REHEARSAL:")
        projected = made.stdout.partition(f"what the real {profile} run would cost here:")[2]
        assert ("Table 1, 1 seed(s), on 1 device(s)" in projected) == (target == "curve")
    print("rehearsal minutes:", {k: round(v, 1) for k, v in minutes.items()})
    out = results / "paper-rehearsal"
    assert not (results / "paper").exists()  # never where real results go
    probe = json.loads((out / "simclr-cifar100-f100-adv-s0.json").read_text())
    assert probe["examples"]["autoattack_subset"] == 2 and "autoattack@8/255" in probe["metrics"]
    on_gpu = torch.cuda.is_available()  # a CPU rehearses float32 at batch 16 (rehearsal.py)
    config = yaml.safe_load((out / "simclr-cifar100-s0" / "config.yaml").read_text())
    assert config["trainer"]["precision"] == ("bf16-mixed" if on_gpu else "32-true")
    assert config["data"]["init_args"]["batch_size"] == (256 if on_gpu else rehearsal.CPU_BATCH)
    assert config["model"]["init_args"]["stem"] == "cifar"
    for name in ("table1", "table2", "robustssl"):
        assert (out / f"{name}.png").stat().st_size > 10_000
    # the protocol at its paper scale: PGD-10 / TRADES-10 training, AutoAttack, 75 sets
    protocol = json.loads((out / "external-acl-robustssl-aff-s0.json").read_text())
    assert "autoattack@8/255" in protocol["metrics"] and "corruption/mean" in protocol["metrics"]
    assert len(protocol["corruptions"]["each"]) == 70  # frost: no photographs in this data
    aff = yaml.safe_load((out / "external-acl-robustssl-aff-s0" / "config.yaml").read_text())
    assert aff["model"]["init_args"]["attack"]["init_args"]["steps"] == 10
    assert aff["trainer"]["max_epochs"] == 1
    assert aff["data"]["init_args"]["batch_size"] == (128 if on_gpu else rehearsal.CPU_BATCH)
    assert (results / "quick-rehearsal" / "curve.png").stat().st_size > 10_000
    segment = torch.load(results / "quick-rehearsal" / "simclr-cifar100-e2-s0" / "encoder.pt",
                         weights_only=True)
    assert segment["metadata"]["epochs"] == 2  # continued from the one-epoch segment
