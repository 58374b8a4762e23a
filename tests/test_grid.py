"""The experiment grid: one description of every table's cells."""

import argparse
from pathlib import Path

import torch

from robust_ssl.runs import grid


def test_every_cell_comes_after_the_cells_it_reads_and_names_are_unique():
    every = []
    for table in grid.TABLES:
        cells = grid.cells_of(table, "cifar10", (0, 1), (1, 2, 4), (1, 2))
        assert cells
        names = [cell.name for cell in cells]
        assert len(names) == len(set(names))
        for position, cell in enumerate(cells):
            for needed in (cell.encoder, cell.continues):
                assert needed is None or needed in names[:position]
        every += cells
    # a cell name means one thing in a results directory that holds every table
    assert len({c.name: c for c in every}) == len({(c.name, c.overrides) for c in every})


def test_seeds_repeat_every_cell_and_only_the_seed_differs():
    one, two = (grid.cells_of("table1", "cifar10", seeds) for seeds in ((0,), (0, 1)))
    assert len(two) == 2 * len(one) == 26
    assert {(c.row, c.column) for c in two if c.seed == 1} == {(c.row, c.column) for c in one}
    assert all(c.name.endswith(f"-s{c.seed}") for c in two)


def test_table2_reuses_table1s_simclr_cells_and_adds_partial_fine_tuning():
    table1 = {c.name for c in grid.cells_of("table1", "cifar10", (0,))}
    table2 = grid.cells_of("table2", "cifar10", (0,))
    assert {"simclr-cifar10-s0", "simclr-cifar10-f30-adv-s0"} <= table1 & {c.name for c in table2}
    partial = [c for c in table2 if c.column == "partial"]
    assert [c.row for c in partial] == list(grid.TABLE2_ROWS)
    assert grid.TABLE2_ROWS[-3:] == ("byol", "barlow_twins", "moco")
    assert all("model.freeze=partial" in c.overrides and "data.fraction=0.3" in c.overrides
               and "model.adversarial=true" in c.overrides for c in partial)


def test_an_image_folder_gets_cells_of_its_own_name():
    assert grid.pretrain_name("cifar10") == "cifar10"
    assert grid.pretrain_name("/data/cifar10") == "folder-cifar10"
    assert grid.pretrain_name("imgs/") == "folder-imgs"


def test_a_cells_command_points_at_its_encoder_result_and_seed(tmp_path):
    args = argparse.Namespace(profile="quick", results=str(tmp_path), data_dir="d",
                              pretrain_data="cifar10", resize=True, restart=True, wandb="off")
    cells = {c.name: c for c in grid.cells_of("table1", "cifar10", (3,))}
    call = grid.command(cells["simclr-cifar10-f10-adv-s3"], args, "table1")
    text = " ".join(call)
    assert "finetune --profile quick" in text and "--seed 3" in text
    assert f"--set model.encoder_path={tmp_path}/simclr-cifar10-s3/encoder.pt" in text
    assert f"--evaluate-output {tmp_path}/simclr-cifar10-f10-adv-s3.json" in text
    assert "--evaluate-set data.resize=true" in text and "--restart" in text
    pretrain = " ".join(grid.command(cells["simclr-cifar10-s3"], args, "table1"))
    assert "pretrain" in pretrain and "--task simclr" in pretrain
    assert "--set data.dataset=cifar10" in pretrain and "--evaluate-output" not in pretrain


def test_default_seeds_follow_the_profile():
    def seeds(profile, given=None):
        return grid.seeds_of(argparse.Namespace(profile=profile, seeds=given))
    assert seeds("paper") == (0, 1, 2) and seeds("quick") == (0,) and seeds("smoke", [4]) == (4,)


def test_the_curve_is_one_pretraining_in_segments_with_table1s_probe_of_each_export():
    cells = grid.cells_of("curve", "cifar10", (0,), (4, 1, 2), (1, 2))
    segments = [c for c in cells if c.stage == "pretrain"]
    assert [c.name for c in segments] == ["simclr-cifar10-e1-s0", "simclr-cifar10-e2-s0",
                                          "simclr-cifar10-e4-s0"]
    assert [c.continues for c in segments] == [None, "simclr-cifar10-e1-s0",
                                               "simclr-cifar10-e2-s0"]
    for segment in segments:  # every image, a learning rate that does not depend on the end
        assert {"data.fraction=1.0", "model.final_lr_ratio=1.0",
                f"trainer.max_epochs={segment.row}"} <= set(segment.overrides)
    probes = [c for c in cells if c.column and c.column.startswith("probe")]
    assert len(probes) == 6 and {c.encoder for c in probes} == {c.name for c in segments}
    table1_probe = {c.name: c for c in grid.cells_of("table1", "cifar10", (0,))}
    for probe in probes:
        training = probe.column.split("-")[1]
        same = table1_probe[f"simclr-cifar10-f100-{training}-s0"]
        assert set(probe.overrides) == set(same.overrides)
    supervised = [c for c in cells if c.stage == "supervised"]
    assert sorted((c.row, c.column) for c in supervised) == [
        ("1", "supervised-adv"), ("1", "supervised-clean"),
        ("2", "supervised-adv"), ("2", "supervised-clean")]
    assert all(f"trainer.max_epochs={c.row}" in c.overrides for c in supervised)


def test_a_longer_curve_keeps_the_cells_of_a_shorter_one():
    short = grid.cells_of("curve", "cifar10", (0,), (1, 2), (1,))
    longer = grid.cells_of("curve", "cifar10", (0,), (1, 2, 4, 8), (1, 2))
    assert set(short) <= set(longer)


def test_a_curve_segments_command_continues_the_previous_checkpoint(tmp_path):
    args = argparse.Namespace(profile="quick", results=str(tmp_path), data_dir="d",
                              pretrain_data="cifar10", resize=False, restart=False, wandb=None)
    cells = {c.name: c for c in grid.cells_of("curve", "cifar10", (0,), (1, 2), (1,))}
    second = " ".join(grid.command(cells["simclr-cifar10-e2-s0"], args, "curve"))
    assert f"--continue-from {tmp_path}/simclr-cifar10-e1-s0/checkpoints/last.ckpt" in second
    assert "--continue-from" not in " ".join(grid.command(cells["simclr-cifar10-e1-s0"], args,
                                                          "curve"))
    probe = " ".join(grid.command(cells["simclr-cifar10-e2-f100-adv-s0"], args, "curve"))
    assert "--evaluate-set model.sweep_epsilons=[]" in probe


def test_default_budgets_follow_the_profile_and_are_sorted():
    def budgets(profile, epochs=None, supervised=None):
        return grid.epochs_of(argparse.Namespace(profile=profile, epochs=epochs,
                                                 supervised_epochs=supervised))
    assert budgets("quick") == ((1, 2, 4, 8, 16), (1, 2, 4))
    assert budgets("paper")[0][-1] == 100
    assert budgets("smoke", [3, 1]) == ((3, 1), (1,))
    assert [c.row for c in grid.cells_of("curve", "cifar10", (0,), (3, 1, 3), ())
            if c.stage == "pretrain"] == ["1", "3"]


def test_table3_reuses_simclr_and_its_clean_probe_and_names_each_policy():
    table1 = {c.name: c for c in grid.cells_of("table1", "cifar10", (0,))}
    table3 = {c.name: c for c in grid.cells_of("table3", "cifar10", (0,), profile="quick")}
    for shared in ("simclr-cifar10-s0", "simclr-cifar10-f100-clean-s0"):
        assert table3[shared].overrides == table1[shared].overrides  # the same run
    assert {(c.row, c.column) for c in table3.values() if c.evaluated} == {
        (task, policy) for task in ("simclr", "adv_simclr")
        for policy in ("SLF", "ALF", "AFF", "AFF-TRADES")}
    alf, aff = table3["adv_simclr-cifar10-f100-alf-s0"], table3["adv_simclr-cifar10-f100-aff-s0"]
    assert alf.encoder == aff.encoder == "adv_simclr-cifar10-s0"
    assert {"model.freeze=linear", "model.adversarial=true", "model.adv_weight=1.0"} <= set(
        alf.overrides) and not any("attack" in o for o in alf.overrides)
    assert {"model.freeze=full", "model.attack.class_path=robust_ssl.attacks.PGD",
            "model.attack.steps=2"} <= set(aff.overrides)
    paper = {c.name: c for c in grid.cells_of("table3", "cifar10", (0,), profile="paper")}
    assert "model.attack.steps=10" in paper["simclr-cifar10-f100-aff-s0"].overrides
    trades = table3["simclr-cifar10-f100-aff-trades-s0"]
    assert {"model.freeze=full", "model.trades_beta=6.0", "model.attack.steps=2",
            "model.attack.class_path=robust_ssl.attacks.TRADES"} <= set(trades.overrides)
    assert "model.adv_weight=1.0" not in trades.overrides  # TRADES's loss, not the mix


def test_a_rehearsal_cuts_batches_not_configs(monkeypatch):
    """A rehearsal cell is its profile's config with epochs, batches and subsets cut, under
    its own results root; the curve keeps one epoch per segment so segments still continue.
    On a GPU the batch size and mixed precision stay; on a CPU they are cut too."""
    from robust_ssl.runs import rehearsal, run

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)

    def resolved(stage, *sets, rehearse=True, task="simclr"):
        args = run.parser().parse_args(
            [stage, "--profile", "paper", "--run-dir", "/r/paper-rehearsal/c", "--wandb", "off"]
            + (["--task", task] if stage == "pretrain" else [])
            + (["--output", "/r/paper-rehearsal/c.json"] if stage == "evaluate" else [])
            + [f"--set={s}" for s in sets] + (["--rehearse"] if rehearse else []))
        return run.resolve(args, Path(args.run_dir))

    real, cut = resolved("pretrain", rehearse=False), resolved("pretrain")
    assert cut["trainer"]["max_epochs"] == 1 and cut["trainer"]["limit_train_batches"] == 2
    assert cut["trainer"]["precision"] == real["trainer"]["precision"] == "bf16-mixed"
    assert cut["model"] == real["model"] and cut["data"] == real["data"]  # batch 256, CIFAR stem
    knn = cut["trainer"]["callbacks"][0]["init_args"]
    assert knn["bank_limit"] == rehearsal.KNN_BANK
    assert resolved("pretrain", "trainer.max_epochs=3")["trainer"]["max_epochs"] == 3
    evaluation = resolved("evaluate")["model"]["init_args"]
    real_evaluation = resolved("evaluate", rehearse=False)["model"]["init_args"]
    assert real_evaluation["pgd_steps"] == 20 and "autoattack_iterations" not in real_evaluation
    assert evaluation["autoattack_examples"] == rehearsal.AUTOATTACK_IMAGES
    assert evaluation["pgd_steps"] == evaluation["large_eps_steps"] == rehearsal.EVAL_PGD_STEPS
    assert evaluation["autoattack_iterations"] == rehearsal.AUTOATTACK_ITERATIONS
    assert evaluation["eps"] == real_evaluation["eps"]  # the budget itself is never cut
    probe = resolved("finetune")
    assert probe["data"]["init_args"]["train_limit"] == 2 * 128
    assert probe["model"]["init_args"]["val_pgd_examples"] == rehearsal.VAL_PGD_IMAGES
    args = grid.parser().parse_args(["curve", "--profile", "paper", "--results", "r",
                                     "--rehearse"])
    assert grid.epochs_of(args) == ((1, 2, 3, 4, 5, 6, 7, 8), (1, 2, 3, 4, 5, 6, 7, 8))

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    on_cpu = resolved("pretrain")
    assert on_cpu["trainer"]["precision"] == rehearsal.CPU_PRECISION == "32-true"
    assert on_cpu["data"]["init_args"] == cut["data"]["init_args"] | {"batch_size": rehearsal.CPU_BATCH}
    assert on_cpu["model"] == cut["model"]
    assert resolved("finetune")["data"]["init_args"]["train_limit"] == 2 * rehearsal.CPU_BATCH


def acl_file(path: Path) -> Path:
    path.write_bytes(b"an encoder file")  # the grid checks it exists; the import reads it
    return path


def test_the_robustssl_table_runs_three_policies_per_encoder_under_the_protocol(tmp_path):
    """Imported encoders once whatever the seeds, this suite's pretraining cells shared with
    Tables 1 and 3, each encoder under SLF, ALF and AFF with the protocol's layers."""
    external = grid.parse_encoder(f"acl={acl_file(tmp_path / 'ACL.pt')},branch=clean")
    cells = grid.cells_of("robustssl", "cifar10", (0, 1), profile="quick", encoders=(external,))
    names = {c.name: c for c in cells}
    assert [c.name for c in cells if c.stage == "import"] == ["external-acl"]
    assert names["external-acl"].source == str(tmp_path / "ACL.pt")
    assert names["external-acl"].overrides == ("branch=clean",)
    ours = {c.name for c in cells if c.stage == "pretrain"}
    shared = {c.name for c in grid.cells_of("table1", "cifar10", (0, 1))} | {
        c.name for c in grid.cells_of("table3", "cifar10", (0, 1))}
    assert ours == {f"{t}-cifar10-s{s}" for t in ("simclr", "adv_simclr") for s in (0, 1)} <= shared
    evaluated = [c for c in cells if c.evaluated]
    assert {(c.row, c.column, c.seed) for c in evaluated} == {
        (row, policy, seed) for row in ("simclr", "adv_simclr", "acl")
        for policy in ("SLF", "ALF", "AFF") for seed in (0, 1)}
    alf = names["external-acl-robustssl-alf-s1"]
    assert alf.encoder == "external-acl" and alf.layers == ("robustssl/alf",)
    assert alf.evaluate_layers == ("robustssl/evaluate",)
    assert {"model.backbone=resnet18", "model.stem=cifar", "trainer.max_epochs=1"} <= set(alf.overrides)
    slf = names["simclr-cifar10-robustssl-slf-s0"]
    assert slf.encoder == "simclr-cifar10-s0" and slf.overrides == ()  # quick's own 4 epochs
    assert "model.lr=0.01" in names["simclr-cifar10-robustssl-aff-s0"].overrides  # Adam-made
    assert not any(o.startswith("model.lr") for o in alf.overrides)
    paper = grid.cells_of("robustssl", "cifar10", (0,), profile="paper")
    assert all(c.overrides == () for c in paper if c.column == "AFF")  # the benchmark's 0.1
    assert grid.cells_of("robustssl", "cifar10", (0,), profile="quick", ours=()) == []
    only = grid.cells_of("robustssl", "cifar10", (0,), encoders=(external,), ours=())
    assert {c.row for c in only} == {"acl"}


def test_a_robustssl_cells_command_names_its_protocol_layers_and_an_import_its_file(tmp_path):
    args = argparse.Namespace(profile="paper", results=str(tmp_path / "r"), data_dir="d",
                              pretrain_data="cifar10", resize=False, restart=False, wandb="off")
    external = grid.parse_encoder(f"deacl={acl_file(tmp_path / 'DeACL.ckpt')},normalize=cifar10")
    cells = {c.name: c for c in grid.cells_of("robustssl", "cifar10", (0,), encoders=(external,))}
    text = " ".join(grid.command(cells["external-deacl-robustssl-aff-s0"], args, "robustssl"))
    assert "--layer robustssl/aff" in text and "--evaluate-layer robustssl/evaluate" in text
    assert f"--set model.encoder_path={tmp_path}/r/external-deacl/encoder.pt" in text
    imported = grid.command(cells["external-deacl"], args, "robustssl")
    assert imported[3:5] == ["import", "--profile"] and "--set" not in imported
    assert imported[-4:] == ["--source", str(tmp_path / "DeACL.ckpt"), "--option",
                             "normalize=cifar10"]


def test_bad_encoder_entries_are_one_clear_error_each(tmp_path):
    import pytest

    from robust_ssl.errors import RobustSSLError

    good = acl_file(tmp_path / "a.pt")
    for text, match in (("acl", "not name=path"), (f"a b={good}", "ENCODERS name 'a b'"),
                        (f"simclr={good}", "none of this suite's encoders"),
                        (f"acl={good},colour=red", "option 'colour=red'"),
                        (f"acl={tmp_path / 'none.pt'}", "does not exist")):
        with pytest.raises(RobustSSLError, match=match):
            grid.parse_encoder(text)
    twice = grid.parse_encoder(f"acl={good}")
    with pytest.raises(RobustSSLError, match="names an encoder twice"):
        grid.cells_of("robustssl", "cifar10", (0,), encoders=(twice, twice))
    with pytest.raises(RobustSSLError, match="OURS names 'simclr2', which is no pretext task"):
        grid.cells_of("robustssl", "cifar10", (0,), ours=("simclr2",))
