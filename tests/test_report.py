import yaml

from robust_ssl.report import pretraining_data


def test_pretraining_data_is_read_from_the_pretraining_run_not_from_the_cell_name(tmp_path):
    """An image folder that happens to be called cifar10 is not labelled CIFAR-10."""
    for name, dataset in (("cifar10", "cifar10"), ("folder-cifar10", "/elsewhere/cifar10")):
        run = tmp_path / f"simclr-{name}"
        run.mkdir()
        (run / "config.yaml").write_text(yaml.safe_dump(
            {"data": {"init_args": {"dataset": dataset}}}))
    assert pretraining_data(tmp_path, "simclr", "cifar10").startswith("CIFAR-10 train")
    assert pretraining_data(tmp_path, "simclr", "folder-cifar10") == (
        "image folder '/elsewhere/cifar10'")
