"""`robust-ssl <table>` (robust_ssl/tables.py) before its cells start: the data is checked in
a process of its own, so torch is not yet loaded when the grid sets the cells' OpenMP settings
(which OpenMP reads when torch loads, and forked cells inherit: runs/launch.py); loaded
earlier, the cells would run without them."""

import subprocess
import sys
import textwrap


def test_the_data_is_checked_without_loading_torch_before_the_grid(table_data, tmp_path):
    script = textwrap.dedent("""
        import sys
        from robust_ssl import tables

        def run_table(args):  # where the grid would set the cells' threads and fork them
            print("torch loaded before the grid:", "torch" in sys.modules, flush=True)
            sys.exit(0)

        tables.grid.run_table = run_table
        tables.main(sys.argv[1:])
    """)
    done = subprocess.run([sys.executable, "-c", script, "table1", "--profile", "smoke",
                           "--data-dir", str(table_data), "--results", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "data: cifar10 test: 12 images, 3 classes" in done.stdout
    assert "torch loaded before the grid: False" in done.stdout


def test_missing_data_stops_the_table_before_any_cell(tmp_path):
    done = subprocess.run([sys.executable, "-m", "robust_ssl", "table1", "--profile", "smoke",
                           "--data-dir", str(tmp_path / "none"), "--results",
                           str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "error" in done.stderr.lower()
    assert not (tmp_path / "r").exists()
