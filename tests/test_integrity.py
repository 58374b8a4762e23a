"""Damage detected (runs/integrity.py): a finished stage's files are checked against what it
wrote before the cell reads as finished: size and time first, the hash when they differ or on
--verify; a truncated or altered file is named with the way out, and nothing is touched until
--restart redoes that stage."""

import os
import shutil

import pytest
import torch

from robust_ssl.runs import integrity, run


@pytest.fixture
def written(tmp_path):
    root = tmp_path / "results"
    (root / "cell").mkdir(parents=True)
    files = [root / "cell" / "encoder.pt", root / "cell.json"]
    files[0].write_bytes(b"weights" * 100)
    files[1].write_text('{"metrics": {}}')
    record = root / "cell" / "config.outputs.json"
    integrity.write(record, files + [root / "cell" / "never-written.ckpt"], str(root))
    return root, files, record


def test_intact_files_pass_and_a_touched_one_is_hashed_and_passes(written):
    root, files, record = written
    assert integrity.damage(record, str(root)) == []
    os.utime(files[0], ns=(1, 1))  # a new time, the same bytes (a copy without -p)
    assert integrity.damage(record, str(root)) == []
    assert integrity.damage(record, str(root), full=True) == []


def test_a_truncated_an_altered_and_a_missing_file_are_each_named(written):
    root, (encoder, result), record = written
    with open(encoder, "r+b") as f:
        f.truncate(10)
    status = result.stat()
    result.write_text('{"metrics": []}')  # altered, same size ...
    os.utime(result, ns=(status.st_atime_ns, status.st_mtime_ns))  # ... and time put back
    problems = integrity.damage(record, str(root))
    assert problems == ["cell/encoder.pt has 10 bytes, 700 when written (truncated or overwritten)"]
    # only the hash sees a same-size, same-time change: VERIFY=1
    assert "cell.json differs from what was written (its SHA-256)" in integrity.damage(
        record, str(root), full=True)
    result.unlink()
    assert "cell.json is missing" in integrity.damage(record, str(root))


def test_a_moved_tree_still_matches(written, tmp_path):
    root, _, record = written
    moved = tmp_path / "elsewhere"
    shutil.copytree(root, moved, copy_function=shutil.copy)  # new times, same bytes
    assert integrity.damage(moved / "cell" / "config.outputs.json", str(moved)) == []


def test_results_made_before_records_were_read_as_they_are(tmp_path):
    assert integrity.damage(tmp_path / "none.outputs.json", str(tmp_path)) == []


def test_a_damaged_import_is_named_until_restart_redoes_it(tmp_path, capsys):
    """Through the runner: the cell's encoder, truncated after its import, makes the cell
    unfinished and its rerun stop with the file's name and RESTART=1, touching nothing;
    --restart imports it again."""
    from tests.test_layouts import acl_keys, torchvision_weights

    source = tmp_path / "ACL.pt"
    torch.save({"state_dict": acl_keys(torchvision_weights(stem="imagenet"), 2, 1)}, source)
    cell = tmp_path / "results" / "external-acl"
    argv = ["import", "--profile", "smoke", "--run-dir", str(cell), "--source", str(source),
            "--option", "stem=imagenet"]
    run.main(argv)
    assert run.finished(argv) and (cell / "import.outputs.json").is_file()
    encoder = cell / "encoder.pt"
    intact = encoder.read_bytes()
    encoder.write_bytes(intact[: len(intact) // 2])  # a copy cut short
    assert not run.finished(argv)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        run.main(argv)
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert "external-acl/encoder.pt has" in message and "RESTART=1" in message
    assert message.count("\n") == 1 and encoder.read_bytes() == intact[: len(intact) // 2]
    run.main(argv + ["--restart"])
    assert encoder.read_bytes() == intact and run.finished(argv)
    assert run.finished(argv + ["--verify"])
