"""What a stage's W&B run is filtered by and how its files become artifacts (runs/dashboard.py);
the whole dashboard of a smoke Table 1 is read back in test_table1.py."""

import pytest
import yaml

from robust_ssl.errors import RobustSSLError
from robust_ssl.runs import dashboard, run
from robust_ssl.runs.configs import apply_overrides

pytest.importorskip("wandb")


def test_model_files_are_referenced_unless_uploading_is_asked(monkeypatch, tmp_path):
    encoder = tmp_path / "cell" / "encoder.pt"
    encoder.parent.mkdir()
    encoder.write_bytes(b"weights")
    monkeypatch.delenv("MODEL_ARTIFACTS", raising=False)
    referenced = dashboard.model_artifact("quick", "cell", "encoder", encoder)
    assert referenced.name == "quick-cell-encoder" and referenced.type == "encoder"
    assert referenced.manifest.entries["encoder.pt"].ref == encoder.resolve().as_uri()
    monkeypatch.setenv("MODEL_ARTIFACTS", "upload")
    uploaded = dashboard.model_artifact("quick", "cell", "encoder", encoder)
    assert uploaded.manifest.entries["encoder.pt"].ref is None
    # the reader's artifact has the writer's digest: that is what joins them when synced
    assert dashboard.model_artifact("quick", "cell", "encoder", encoder).digest == uploaded.digest
    monkeypatch.setenv("MODEL_ARTIFACTS", "sometimes")
    with pytest.raises(RobustSSLError, match="MODEL_ARTIFACTS='sometimes': choose reference"):
        dashboard.model_artifact("quick", "cell", "encoder", encoder)


def test_a_cells_keys_come_from_its_config_and_its_evaluation_inherits_them(tmp_path):
    config = run.base_config("smoke", "finetune")
    apply_overrides(config, ["model.freeze=partial", "model.adversarial=true",
                             "data.fraction=0.3", "seed_everything=2"])
    cell = tmp_path / "jigsaw-cifar100-f30-partial-adv-s2"
    keys = dashboard.stage_keys("finetune", "quick", "table2-quick", cell, config)
    assert keys == {"table": "table2", "profile": "quick", "stage": "finetune",
                    "cell": cell.name, "seed": 2, "fraction": 0.3, "policy": "partial",
                    "training": "adv", "eps_space": "pixel"}
    assert dashboard.tags_of(keys) == ["table2", "quick", "finetune", "adv", "seed2"]
    cell.mkdir()
    (cell / "config.yaml").write_text(yaml.safe_dump(config))
    evaluation = run.base_config("smoke", "evaluate")
    apply_overrides(evaluation, ["model.eps_space=normalized"])
    found = dashboard.stage_keys("evaluate", "quick", "table2-quick", cell, evaluation)
    assert found["stage"] == "evaluate" and found["policy"] == "partial"
    assert found["eps_space"] == "normalized"
    by_hand = dashboard.stage_keys("pretrain", "quick", "quick", tmp_path / "mine",
                                   run.base_config("smoke", "pretrain"))
    assert by_hand["table"] is None and "seed0" in dashboard.tags_of(by_hand)


def test_eps_points_are_each_attacks_budgets_in_order():
    metrics = {"clean": 0.9, "fgsm@8/255": 0.2, "fgsm@2/255": 0.6, "pgd@2/255": 0.5,
               "pgd@8/255": 0.1, "noise@8/255": 0.85}
    assert dashboard.eps_points(metrics) == [
        [2.0, 60.0, "fgsm"], [8.0, 20.0, "fgsm"], [2.0, 50.0, "pgd"], [8.0, 10.0, "pgd"]]
