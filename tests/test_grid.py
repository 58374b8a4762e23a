"""The experiment grid: one description of every table's cells."""

import argparse

from robust_ssl import grid


def test_every_cell_comes_after_the_encoder_it_reads_and_names_are_unique():
    for table in grid.TABLES:
        cells = grid.cells_of(table, "cifar10", (0, 1))
        names = [cell.name for cell in cells]
        assert len(names) == len(set(names))
        for position, cell in enumerate(cells):
            if cell.encoder is not None:
                assert cell.encoder in names[:position]


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
    assert [c.row for c in partial] == list(grid.TABLE2_TASKS)
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
