import argparse
import shutil
import json
from pathlib import Path

import pytest
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from robust_ssl.runs import run
from robust_ssl.errors import RobustSSLError


def test_overrides_reach_init_args_and_parse_as_yaml():
    config = {"data": {"class_path": "X", "init_args": {"fraction": 1.0}}, "trainer": {}}
    run.apply_overrides(config, ["data.fraction=0.1", "trainer.max_epochs=3",
                                 "data.dataset=cifar10", "data.encoder=null"])
    assert config["data"]["init_args"] == {"fraction": 0.1, "dataset": "cifar10", "encoder": None}
    assert config["trainer"]["max_epochs"] == 3
    run.apply_overrides(config, ["seed_everything=3"])
    assert config["seed_everything"] == 3
    with pytest.raises(RobustSSLError, match="expected key=value"):
        run.apply_overrides(config, ["data.fraction"])


def test_an_override_swapping_a_nested_class_keeps_only_the_budget():
    """FGSM-RS -> PGD: PGD must not inherit random_start=false (it would start at x)."""
    attack = {"class_path": "robust_ssl.attacks.FGSM", "init_args": {"eps": 0.1, "random_start": True}}
    config = {"model": {"class_path": "M", "init_args": {"attack": attack, "lr": 0.1}}}
    run.apply_overrides(config, ["model.attack.class_path=robust_ssl.attacks.PGD",
                                 "model.attack.steps=3"])
    assert config["model"]["init_args"] == {"lr": 0.1, "attack": {
        "class_path": "robust_ssl.attacks.PGD", "init_args": {"eps": 0.1, "steps": 3}}}
    run.apply_overrides(config, ["model.attack.class_path=robust_ssl.attacks.PGD"])  # same class
    assert config["model"]["init_args"]["attack"]["init_args"] == {"eps": 0.1, "steps": 3}


def test_outputs_are_routed_into_the_run_directory(tmp_path):
    config = run.base_config("quick", "pretrain")
    run.route_outputs(config, tmp_path / "cell", "table1-quick", "cell", wandb_mode="offline",
                      stage="pretrain")
    trainer = config["trainer"]
    assert trainer["default_root_dir"] == str(tmp_path / "cell")
    paths = [c["init_args"].get("dirpath") or c["init_args"].get("path")
             for c in trainer["callbacks"]]
    assert str(tmp_path / "cell/checkpoints") in paths and str(tmp_path / "cell/encoder.pt") in paths
    kinds = [logger["class_path"].rsplit(".", 1)[1] for logger in trainer["logger"]]
    assert kinds == ["CSVLogger", "WandbLogger"]
    assert trainer["logger"][0]["init_args"]["version"] == "pretrain"  # logs/<stage>/
    assert trainer["logger"][1]["init_args"]["offline"] is True


class RenamedCheckpoint(ModelCheckpoint):
    """A user's subclass: routed as a ModelCheckpoint though its path says otherwise."""


def test_outputs_are_routed_by_class_however_the_class_is_spelled(tmp_path):
    config = {"trainer": {"callbacks": [
        {"class_path": "ModelCheckpoint", "init_args": {"save_last": True}},
        {"class_path": f"{__name__}.RenamedCheckpoint"},
        {"class_path": "ExportEncoder"},
        {"class_path": "robust_ssl.pretrain.callbacks.ExportEncoder"}]}}
    run.route_outputs(config, tmp_path, "g", "cell", wandb_mode="off", stage="pretrain")
    routed = [c["init_args"].get("dirpath") or c["init_args"].get("path")
              for c in config["trainer"]["callbacks"]]
    assert routed == [str(tmp_path / "checkpoints")] * 2 + [str(tmp_path / "encoder.pt")] * 2
    config = {"trainer": {"callbacks": [{"class_path": "NoSuchCallback"}]}}
    with pytest.raises(RobustSSLError, match="'NoSuchCallback' in the config cannot be imported"):
        run.route_outputs(config, tmp_path, "g", "cell", wandb_mode="off", stage="pretrain")


def test_the_seed_option_sets_the_runs_seed(image_folder, tmp_path):
    data_dir, _ = image_folder
    args = argparse.Namespace(
        stage="supervised", profile="smoke", run_dir=str(tmp_path / "c"), data_dir=str(data_dir),
        set=None, group=None, wandb="off", seed=7, restart=False)
    assert run.resolve(args, tmp_path / "c")["seed_everything"] == 7


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(RobustSSLError, match="profile 'fast' unknown"):
        run.base_config("fast", "pretrain")


def test_an_interrupted_cell_resumes_from_its_last_checkpoint(image_folder, tmp_path, capsys):
    data_dir, _ = image_folder
    cell = tmp_path / "cell"
    args = ["supervised", "--profile", "smoke", "--run-dir", str(cell), "--data-dir",
            str(data_dir), "--wandb", "off", "--set", "trainer.max_epochs=2"]
    run.main(args)
    finished = torch.load(cell / run.FINAL_CLASSIFIER, weights_only=False)
    # a finished cell keeps one resumable state and a classifier without optimizer state
    assert [p.name for p in (cell / "checkpoints").iterdir()] == ["last.ckpt"]
    assert "optimizer_states" not in finished and "state_dict" in finished
    (cell / run.FINAL_CLASSIFIER).unlink()  # as if the run had died after its last epoch
    run.main(args)
    assert "resuming cell from" in capsys.readouterr().out
    resumed = torch.load(cell / run.FINAL_CLASSIFIER, weights_only=False)
    assert resumed["global_step"] == finished["global_step"] == 4  # no step taken twice
    for name, tensor in finished["state_dict"].items():
        assert torch.equal(tensor, resumed["state_dict"][name]), name


def test_pretext_tasks_are_the_profile_yamls_and_unknown_ones_are_refused():
    assert run.pretext_tasks() == ["adv_simclr", "barlow_twins", "byol", "jigsaw", "moco",
                                   "multitask", "rotation", "simclr"]
    assert "RotationTask" in str(run.base_config("smoke", "pretrain", "rotation")["model"])
    with pytest.raises(RobustSSLError,
                       match="unknown task .colorize.: choose one of adv_simclr, barlow_twins"):
        run.base_config("smoke", "pretrain", "colorize")


def cell_args(data_dir, cell, *sets, stage="supervised"):
    args = [stage, "--profile", "smoke", "--run-dir", str(cell), "--data-dir", str(data_dir),
            "--wandb", "off"]
    return args + [f"--set={item}" for item in sets]


def test_a_rerun_with_another_config_is_refused_until_restarted(image_folder, tmp_path, capsys):
    data_dir, _ = image_folder
    cell = tmp_path / "cell"
    run.main(cell_args(data_dir, cell, "data.fraction=0.5", "model.adversarial=true"))
    trained = (cell / run.FINAL_CLASSIFIER).read_bytes()
    config = (cell / "config.yaml").read_text()
    with pytest.raises(SystemExit) as exit_info:
        run.main(cell_args(data_dir, cell, "data.fraction=1.0", "model.adversarial=false"))
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "data.init_args.fraction: 0.5 -> 1.0" in message
    assert "model.init_args.adversarial: true -> false" in message
    assert "new run directory" in message and "--restart" in message
    assert (cell / run.FINAL_CLASSIFIER).read_bytes() == trained  # nothing overwritten
    assert (cell / "config.yaml").read_text() == config
    run.main(cell_args(data_dir, cell, "data.fraction=1.0", "model.adversarial=false")
             + ["--restart"])
    assert "resuming" not in capsys.readouterr().out
    final = torch.load(cell / run.FINAL_CLASSIFIER, weights_only=True)
    assert final["hyper_parameters"]["adversarial"] is False
    assert final["datamodule_hyper_parameters"]["fraction"] == 1.0


def test_evaluation_keeps_the_training_logs(image_folder, tmp_path):
    data_dir, _ = image_folder
    cell = tmp_path / "cell"
    run.main(cell_args(data_dir, cell))
    run.main(["evaluate", "--profile", "smoke", "--run-dir", str(cell), "--data-dir",
              str(data_dir), "--wandb", "off", "--output", str(tmp_path / "cell.json")])
    training = (cell / "logs/supervised/metrics.csv").read_text()
    assert "val/acc" in training.splitlines()[0] and len(training.splitlines()) > 1
    assert "test/clean" in (cell / "logs/evaluate/metrics.csv").read_text()


def test_a_damaged_last_checkpoint_is_named_with_the_way_out(image_folder, tmp_path, capsys):
    data_dir, _ = image_folder
    cell = tmp_path / "cell"
    run.main(cell_args(data_dir, cell))
    (cell / run.FINAL_CLASSIFIER).unlink()
    (cell / "checkpoints/last.ckpt").write_bytes(b"half a checkpoint")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        run.main(cell_args(data_dir, cell))
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "last.ckpt' is damaged" in message
    assert "delete it" in message
    (cell / "checkpoints/last.ckpt").unlink()  # the way out works
    run.main(cell_args(data_dir, cell))
    assert (cell / run.FINAL_CLASSIFIER).is_file()


def unwritable_folder(tmp_path):
    """A folder nobody may write into, root included (root ignores permission bits)."""
    import os

    if os.geteuid() == 0:
        return Path("/sys/robust-ssl-results")  # sysfs refuses new entries even to root
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    return folder / "cell"


def test_unwritable_results_and_unknown_settings_stop_before_anything_is_written(
        image_folder, tmp_path, capsys):
    data_dir, _ = image_folder
    with pytest.raises(SystemExit):
        run.main(cell_args(data_dir, unwritable_folder(tmp_path)))
    assert "cannot write to" in capsys.readouterr().err
    for bad in (["--wandb", "sometimes"], ["--profile", "fast"]):
        cell = tmp_path / f"cell{bad[0]}"
        args = cell_args(data_dir, cell)
        args[args.index(bad[0]) + 1] = bad[1]
        with pytest.raises(SystemExit):
            run.main(args)
        assert not cell.exists()
    errors = capsys.readouterr().err
    assert "invalid choice: 'sometimes'" in errors and "profile 'fast' unknown" in errors


def test_output_to_a_file_gets_one_line_per_epoch(image_folder, tmp_path):
    import subprocess
    import sys

    data_dir, _ = image_folder
    out = subprocess.run([sys.executable, "-m", "robust_ssl.runs.run"]
                         + cell_args(data_dir, tmp_path / "cell", "trainer.max_epochs=2"),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    log = out.stdout + out.stderr
    assert "\r" not in log
    assert [line.split(":")[0] for line in log.splitlines() if line.startswith("epoch ")] == [
        "epoch 1/2", "epoch 2/2"]


def test_too_few_pretraining_images_fail_without_an_encoder(image_folder, tmp_path, capsys):
    data_dir, _ = image_folder
    cell = tmp_path / "simclr"
    with pytest.raises(SystemExit):
        run.main(cell_args(data_dir, cell, "data.dataset=cifar10", "data.batch_size=100",
                           stage="pretrain"))
    assert "fewer than one batch of 100" in capsys.readouterr().err
    assert not (cell / "encoder.pt").exists()


def test_a_continued_pretraining_equals_one_longer_run(image_folder, tmp_path, capsys):
    """The budget curve's segments: epochs 1..2 trained on from epoch 1's checkpoint give the
    encoder of one 2-epoch run, bit for bit; a checkpoint that is not shorter, or a learning
    rate that decays over the run's length, is refused before anything is written."""
    data_dir, _ = image_folder
    constant, data = "model.final_lr_ratio=1.0", "data.dataset=cifar10"
    run.main(cell_args(data_dir, tmp_path / "e1", constant, data, "trainer.max_epochs=1",
                       stage="pretrain"))
    first = tmp_path / "e1/checkpoints/last.ckpt"
    run.main(cell_args(data_dir, tmp_path / "e2", constant, data, "trainer.max_epochs=2",
                       stage="pretrain") + ["--continue-from", str(first)])
    assert "continuing e2 from" in capsys.readouterr().out
    run.main(cell_args(data_dir, tmp_path / "whole", constant, data, "trainer.max_epochs=2",
                       stage="pretrain"))
    continued = torch.load(tmp_path / "e2/encoder.pt", weights_only=True)
    whole = torch.load(tmp_path / "whole/encoder.pt", weights_only=True)
    assert continued["metadata"]["epochs"] == whole["metadata"]["epochs"] == 2
    for name, tensor in whole["state_dict"].items():
        assert torch.equal(tensor, continued["state_dict"][name]), name
    record = json.loads((tmp_path / "e2/config.fingerprint.json").read_text())
    assert "sha256(continue_from)" in record

    for sets, message in ((["trainer.max_epochs=1", constant, data], "has 1 epochs already"),
                          (["trainer.max_epochs=2", data], "set model.final_lr_ratio=1.0")):
        with pytest.raises(SystemExit):
            run.main(cell_args(data_dir, tmp_path / "bad", *sets, stage="pretrain")
                     + ["--continue-from", str(first)])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_a_finished_tree_moved_with_its_data_elsewhere_is_up_to_date(image_folder, tmp_path,
                                                                     capsys):
    """Relocatable results: a finished cell (training and evaluation) and its data moved to
    other folders are reused, not redone; a changed data file is another config."""
    data_dir, _ = image_folder
    root, cell = tmp_path / "results", "supervised-clean-s0"

    def run_cell(results, data):
        run.main(cell_args(data, results / cell, "model.adversarial=false") +
                 ["--evaluate-output", str(results / f"{cell}.json")])
        return capsys.readouterr().out

    run_cell(root, data_dir)
    made = (root / f"{cell}.json").read_bytes()
    moved, moved_data = tmp_path / "elsewhere" / "results", tmp_path / "copied" / "data"
    moved.parent.mkdir()
    root.rename(moved)
    shutil.copytree(data_dir, moved_data)  # a copy: new mtimes, same files
    shutil.rmtree(data_dir)
    out = run_cell(moved, moved_data)
    assert out.count("is up to date") == 2, out
    assert (moved / f"{cell}.json").read_bytes() == made
    record = json.loads((moved / cell / "config.fingerprint.json").read_text())
    assert record["trainer.default_root_dir"] == "<results>/supervised-clean-s0"
    assert "data.init_args.data_dir" not in record and record["data.identity"]
    extra = next((moved_data / "cifar10" / "train" / "cat").iterdir())
    shutil.copy(extra, extra.with_name("extra.png"))  # the data changed: not the same config
    with pytest.raises(SystemExit):
        run_cell(moved, moved_data)
    assert "data.identity" in capsys.readouterr().err


def test_an_import_cell_converts_once_and_refuses_another_file(tmp_path, capsys):
    """`run import`: the file of another codebase becomes the cell's encoder.pt; the same
    file again (even moved, with the cell's tree) is up to date; another file in the same
    cell is refused until --restart."""
    from tests.test_layouts import acl_keys, torchvision_weights

    source = tmp_path / "enc" / "DynACL.pt"
    source.parent.mkdir()
    torch.save({"state_dict": acl_keys(torchvision_weights(), 2, 1)}, source)
    cell = tmp_path / "results" / "external-dynacl"

    def imported(file, folder, *extra):
        argv = ["import", "--profile", "quick", "--run-dir", str(folder), "--source", str(file),
                "--option", "branch=adversarial", *extra]
        run.main(argv)
        return argv, capsys.readouterr().out

    argv, out = imported(source, cell)
    assert "layout acl" in out and "adversarial ('pgd')" in out
    assert torch.load(cell / "encoder.pt", weights_only=True)["metadata"]["source"] == "DynACL.pt"
    assert run.finished(argv)
    record = json.loads((cell / "import.fingerprint.json").read_text())
    assert record["source"] == "DynACL.pt" and "sha256(source)" in record
    assert "is up to date" in imported(source, cell)[1]
    moved_source, moved = tmp_path / "elsewhere" / "DynACL.pt", tmp_path / "moved" / "external-dynacl"
    shutil.copytree(source.parent, moved_source.parent)
    shutil.copytree(cell.parent, moved.parent)
    assert "is up to date" in imported(moved_source, moved)[1]
    torch.save({"state_dict": acl_keys(torchvision_weights(seed=1), 2, 1)}, source)
    assert not run.finished(argv)
    with pytest.raises(SystemExit):
        imported(source, cell)
    assert "sha256(source)" in capsys.readouterr().err
    assert "layout acl" in imported(source, cell, "--restart")[1]
    with pytest.raises(SystemExit):
        imported(source, cell, "--option", "colour=red")
    assert "--option 'colour=red'" in capsys.readouterr().err


def test_lightning_clis_dotted_flags_are_the_same_overrides_as_set(image_folder, tmp_path,
                                                                   capsys):
    data_dir, _ = image_folder
    common = ["supervised", "--profile", "smoke", "--run-dir", str(tmp_path / "c"),
              "--data-dir", str(data_dir)]
    by_set = run.parse(common + ["--set", "model.adversarial=true", "--set",
                                 "data.fraction=0.5", "--set", "model.attack.eps=0.01"])
    dotted = run.parse(common + ["--model.adversarial", "true", "--data.fraction=0.5",
                                 "--model.init_args.attack.init_args.eps", "0.01"])
    assert run.resolve(dotted, tmp_path / "c") == run.resolve(by_set, tmp_path / "c")
    resolved = run.resolve(dotted, tmp_path / "c")["model"]["init_args"]
    assert resolved["adversarial"] is True and resolved["attack"]["init_args"]["eps"] == 0.01
    for wrong, message in ((["--adversarial", "true"], "unrecognized argument '--adversarial'"),
                           (["--model.adversarial"], "--model.adversarial has no value")):
        with pytest.raises(SystemExit):
            run.parse(common + wrong)
        assert message in capsys.readouterr().err
