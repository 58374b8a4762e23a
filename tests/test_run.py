import pytest
import torch
import yaml

from robust_ssl import run
from robust_ssl.errors import RobustSSLError


def test_overrides_reach_init_args_and_parse_as_yaml():
    config = {"data": {"class_path": "X", "init_args": {"fraction": 1.0}}, "trainer": {}}
    run.apply_overrides(config, ["data.fraction=0.1", "trainer.max_epochs=3",
                                 "data.dataset=cifar10", "data.encoder=null"])
    assert config["data"]["init_args"] == {"fraction": 0.1, "dataset": "cifar10", "encoder": None}
    assert config["trainer"]["max_epochs"] == 3
    with pytest.raises(RobustSSLError, match="expected key=value"):
        run.apply_overrides(config, ["data.fraction"])


def test_outputs_are_routed_into_the_run_directory(tmp_path):
    config = run.base_config("quick", "pretrain")
    config["_stage"] = "pretrain"
    run.route_outputs(config, tmp_path / "cell", "table1-quick", "cell", wandb_mode="offline")
    trainer = config["trainer"]
    assert trainer["default_root_dir"] == str(tmp_path / "cell")
    paths = [c["init_args"].get("dirpath") or c["init_args"].get("path")
             for c in trainer["callbacks"]]
    assert str(tmp_path / "cell/checkpoints") in paths and str(tmp_path / "cell/encoder.pt") in paths
    kinds = [logger["class_path"].rsplit(".", 1)[1] for logger in trainer["logger"]]
    assert kinds == ["CSVLogger", "WandbLogger"]
    assert trainer["logger"][1]["init_args"]["offline"] is True


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(RobustSSLError, match="profile 'fast' unknown"):
        run.base_config("fast", "pretrain")


def test_an_interrupted_cell_resumes_from_its_last_checkpoint(image_folder, tmp_path, capsys):
    data_dir, _ = image_folder
    cell = tmp_path / "cell"
    args = ["supervised", "--profile", "smoke", "--run-dir", str(cell), "--data-dir",
            str(data_dir), "--wandb", "off"]
    run.main(args + ["--set", "trainer.max_epochs=1"])
    (cell / run.FINAL_CLASSIFIER).unlink()  # as if the run had died after its first epoch
    # One batch per epoch now: from scratch the run would end at step 2; resumed, it carries
    # on from the 2 steps already taken.
    run.main(args + ["--set", "trainer.max_epochs=2", "--set", "trainer.limit_train_batches=1"])
    assert "resuming cell from" in capsys.readouterr().out
    final = torch.load(cell / run.FINAL_CLASSIFIER, weights_only=False)
    assert final["global_step"] > 2
    assert yaml.safe_load((cell / "config.yaml").read_text())["trainer"]["max_epochs"] == 2


def test_pretext_tasks_are_the_profile_yamls_and_unknown_ones_are_refused():
    assert run.pretext_tasks("smoke") == ["jigsaw", "multitask", "rotation", "simclr"]
    assert "RotationTask" in str(run.base_config("smoke", "pretrain", "rotation")["model"])
    with pytest.raises(RobustSSLError, match="unknown task 'colorize': choose one of jigsaw"):
        run.base_config("smoke", "pretrain", "colorize")
