import os
import pickle

import numpy as np
import pytest
import torch

from robust_ssl.data import sources
from robust_ssl.data.sources import load_split
from robust_ssl.errors import DataError
from tests.conftest import CLASSES, save_image, write_cifar_files, write_image_folder


def test_image_folder_round_trip_is_exact_for_png(image_folder):
    data_dir, written = image_folder
    for split in ("train", "test"):
        loaded = load_split("cifar10", split, data_dir)
        assert loaded.images.dtype == torch.uint8 and loaded.labels.dtype == torch.int64
        assert torch.equal(loaded.images, written[split])
        per_class = len(written[split]) // len(CLASSES)
        assert loaded.labels.tolist() == [c for c in range(3) for _ in range(per_class)]
        assert loaded.classes == CLASSES


def test_classes_are_sorted_by_name(tmp_path):
    write_image_folder(tmp_path / "set", {"train": 1, "test": 1}, classes=("zebra", "ant", "mole"))
    loaded = load_split(str(tmp_path / "set"), "train", tmp_path / "data")
    assert loaded.classes == ("ant", "mole", "zebra")


def test_jpeg_and_grayscale_images_load_as_rgb(tmp_path):
    root = tmp_path / "jpgs"
    for split in ("train", "test"):
        (root / split / "a").mkdir(parents=True)
        save_image(torch.full((3, 32, 32), 200, dtype=torch.uint8), root / split / "a/x.jpg")
        save_image(torch.full((1, 32, 32), 90, dtype=torch.uint8), root / split / "a/y.JPEG")
    loaded = load_split(str(root), "train", tmp_path / "data")
    assert loaded.images.shape == (2, 3, 32, 32)
    assert (loaded.images[0].float() - 200).abs().max() <= 2  # JPEG is lossy
    assert torch.equal(loaded.images[1][0], loaded.images[1][2])  # gray expanded to 3 channels


def test_dataset_name_resolves_under_data_dir_and_path_works_too(image_folder):
    data_dir, _ = image_folder
    by_name = load_split("cifar10", "test", data_dir, use_cache=False)
    by_path = load_split(str(data_dir / "cifar10"), "test", data_dir, use_cache=False)
    assert torch.equal(by_name.images, by_path.images)


@pytest.mark.parametrize("dataset,n_classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_python_files_round_trip(tmp_path, dataset, n_classes):
    written = write_cifar_files(tmp_path, dataset, train=50, test=20)
    for split in ("train", "test"):
        loaded = load_split(dataset, split, tmp_path)
        data, labels = written[split]
        assert torch.equal(loaded.images, torch.from_numpy(data).reshape(-1, 3, 32, 32))
        assert loaded.labels.tolist() == labels
        assert len(loaded.classes) == n_classes


def test_cifar_files_take_precedence_over_image_folder(tmp_path):
    write_cifar_files(tmp_path, "cifar10", train=10, test=5)
    write_image_folder(tmp_path / "cifar10", {"train": 1, "test": 1})
    assert len(load_split("cifar10", "train", tmp_path, use_cache=False)) == 10


def test_cache_is_written_once_and_reused(image_folder, monkeypatch):
    data_dir, written = image_folder
    first = load_split("cifar10", "train", data_dir)
    cache_files = list((data_dir / ".cache").glob("*-train.pt"))
    assert len(cache_files) == 1

    def no_decoding(self, split):
        raise AssertionError("decoded although the cache is valid")

    monkeypatch.setattr(sources.ImageFolder, "decode", no_decoding)
    again = load_split("cifar10", "train", data_dir)
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)


def test_changed_source_invalidates_cache(image_folder):
    data_dir, _ = image_folder
    load_split("cifar10", "train", data_dir)
    replacement = torch.zeros(3, 32, 32, dtype=torch.uint8)
    target = data_dir / "cifar10/train/dog/0000.png"
    save_image(replacement, target)
    os.utime(target, ns=(1, 1))  # a different mtime even on coarse file-system clocks
    reloaded = load_split("cifar10", "train", data_dir)
    assert torch.equal(reloaded.images[20], replacement)


def test_added_image_invalidates_cache(image_folder):
    data_dir, written = image_folder
    assert len(load_split("cifar10", "test", data_dir)) == 12
    save_image(written["test"][0], data_dir / "cifar10/test/cat/extra.png")
    assert len(load_split("cifar10", "test", data_dir)) == 13


def test_damaged_cache_is_decoded_again_with_a_warning(image_folder):
    data_dir, written = image_folder
    load_split("cifar10", "test", data_dir)
    (cache_file,) = (data_dir / ".cache").glob("*-test.pt")
    cache_file.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable cache"):
        loaded = load_split("cifar10", "test", data_dir)
    assert torch.equal(loaded.images, written["test"])


def test_missing_data_directory_names_path_and_layouts(tmp_path):
    with pytest.raises(DataError) as error:
        load_split("cifar100", "train", tmp_path / "nowhere")
    message = str(error.value)
    assert "nowhere" in message and "does not exist" in message
    assert "cifar-100-python" in message and "cifar100/{train,test}" in message
    assert "download" in message


def test_empty_image_folder_is_an_error(tmp_path):
    (tmp_path / "data/cifar10/train/cat").mkdir(parents=True)
    (tmp_path / "data/cifar10/test/cat").mkdir(parents=True)
    with pytest.raises(DataError, match="no images in"):
        load_split("cifar10", "train", tmp_path / "data")


def test_missing_split_directory_is_an_error(tmp_path):
    write_image_folder(tmp_path / "data/cifar10", {"train": 1})
    with pytest.raises(DataError, match="has no 'test/' directory"):
        load_split("cifar10", "test", tmp_path / "data")


def test_train_and_test_classes_must_match(tmp_path):
    write_image_folder(tmp_path / "data/cifar10", {"train": 1})
    write_image_folder(tmp_path / "data/cifar10", {"test": 1}, classes=("cat", "dog", "owl"))
    with pytest.raises(DataError, match="classes differ.*frog, owl"):
        load_split("cifar10", "train", tmp_path / "data")


def test_unreadable_image_is_named(image_folder):
    data_dir, _ = image_folder
    broken = data_dir / "cifar10/train/frog/0003.png"
    broken.write_bytes(b"\x89PNG truncated")
    with pytest.raises(DataError, match="cannot read image .*frog/0003.png"):
        load_split("cifar10", "train", data_dir)
    assert broken.exists()  # nothing deleted


def test_images_of_different_sizes_are_an_error(image_folder):
    data_dir, _ = image_folder
    save_image(torch.zeros(3, 16, 16, dtype=torch.uint8), data_dir / "cifar10/test/cat/x.png")
    with pytest.raises(DataError, match="same size"):
        load_split("cifar10", "test", data_dir)


def test_corrupt_cifar_file_is_named(tmp_path):
    write_cifar_files(tmp_path, "cifar10", train=10, test=5)
    (tmp_path / "cifar-10-batches-py/data_batch_3").write_bytes(b"garbage")
    with pytest.raises(DataError, match="corrupt CIFAR file .*data_batch_3"):
        load_split("cifar10", "train", tmp_path)


def test_cifar_labels_out_of_range_are_corrupt(tmp_path):
    write_cifar_files(tmp_path, "cifar10", train=10, test=5)
    with open(tmp_path / "cifar-10-batches-py/test_batch", "wb") as f:
        pickle.dump({"data": np.zeros((5, 3072), np.uint8), "labels": [0, 1, 2, 3, 99]}, f)
    with pytest.raises(DataError, match="labels outside 0..9"):
        load_split("cifar10", "test", tmp_path)


def test_missing_cifar_batch_is_named(tmp_path):
    write_cifar_files(tmp_path, "cifar100", train=10, test=5)
    (tmp_path / "cifar-100-python/test").unlink()
    with pytest.raises(DataError, match="missing file .*cifar-100-python/test"):
        load_split("cifar100", "test", tmp_path)


def test_unknown_dataset_and_split(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'imagenet'"):
        load_split("imagenet", "train", tmp_path)
    with pytest.raises(DataError, match="unknown split 'valid'"):
        load_split("cifar10", "valid", tmp_path)


def test_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    import urllib.request
    from urllib.error import URLError

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="could not download CIFAR-10 into .*no network"):
        load_split("cifar10", "train", tmp_path / "data", download=True)


def test_real_cifar10_jpeg_copy_if_present(tmp_path_factory):
    """The shared JPEG copy of CIFAR-10 unpacks to 50,000 / 10,000 images, balanced by class."""
    archive = os.environ.get("ROBUST_SSL_CIFAR10_TAR", "../shared/data/cifar10.tar.gz")
    if not os.path.isfile(archive):
        pytest.skip(f"real data not present at {archive}")
    import tarfile
    data_dir = tmp_path_factory.mktemp("real")
    with tarfile.open(archive) as tar:
        tar.extractall(data_dir, filter="data")
    for split, per_class in (("train", 5000), ("test", 1000)):
        loaded = load_split("cifar10", split, data_dir, use_cache=False)
        assert loaded.images.shape[1:] == (3, 32, 32)
        assert torch.bincount(loaded.labels).tolist() == [per_class] * 10
        assert loaded.classes[0] == "airplane" and loaded.classes[-1] == "truck"


def test_hidden_entries_never_become_classes_or_images(image_folder):
    data_dir, written = image_folder
    for split in ("train", "test"):
        hidden = data_dir / "cifar10" / split / ".ipynb_checkpoints"
        hidden.mkdir()
        save_image(torch.zeros(3, 32, 32, dtype=torch.uint8), hidden / "0000-checkpoint.png")
        save_image(torch.zeros(3, 32, 32, dtype=torch.uint8), data_dir / "cifar10" / split / "cat" / ".x.png")
    loaded = load_split("cifar10", "train", data_dir)
    assert loaded.classes == CLASSES and torch.equal(loaded.images, written["train"])


def test_images_that_are_not_32x32_are_refused_or_resized_alike(tmp_path):
    written = write_image_folder(tmp_path / "big", {"train": 2, "test": 2}, size=64)
    with pytest.raises(DataError, match="are 64×64 .* 32×32: set `resize: true`"):
        load_split(str(tmp_path / "big"), "train", tmp_path)
    train = load_split(str(tmp_path / "big"), "train", tmp_path, resize=True)
    test = load_split(str(tmp_path / "big"), "test", tmp_path, resize=True)
    assert train.images.shape[1:] == test.images.shape[1:] == (3, 32, 32)
    assert train.images.dtype == torch.uint8
    # a flat 64×64 image resizes to the same flat 32×32 image
    flat = torch.full((3, 64, 64), 77, dtype=torch.uint8)
    save_image(flat, tmp_path / "big/train/cat/flat.png")
    resized = load_split(str(tmp_path / "big"), "train", tmp_path, resize=True)
    assert (resized.images == 77).all(dim=(1, 2, 3)).sum() == 1
    assert len(resized) == len(written["train"]) + 1


def test_flat_folder_is_one_unlabeled_train_split(tmp_path):
    generator = torch.Generator().manual_seed(0)
    folder = tmp_path / "unlabeled"
    folder.mkdir()
    for i in range(5):
        save_image(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=generator),
                   folder / f"{i}.png")
    loaded = load_split(str(folder), "train", tmp_path)
    assert len(loaded) == 5 and loaded.classes == ("unlabeled",) and loaded.labels.eq(0).all()
    with pytest.raises(DataError, match="flat folder of images: it serves unlabeled pretraining"):
        load_split(str(folder), "test", tmp_path)
