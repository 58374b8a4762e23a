"""The README stays one screen, its commands are ones the Makefile and the CLI accept as written,
and its links lead to files that exist (the docs site's own links are checked by
`mkdocs build --strict`)."""

import re
import subprocess
from pathlib import Path

from robust_ssl import tables

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_readme_fits_on_a_screen_and_its_links_exist():
    assert len(README.splitlines()) <= 150
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if not link.startswith("http")]
    assert local and all((ROOT / link).exists() for link in local), local


def test_every_make_command_in_the_readme_is_a_target_make_accepts(tmp_path):
    commands = [line.split("#")[0].strip() for block in re.findall(r"```bash\n(.*?)```", README,
                                                                     re.S)
                for line in block.splitlines() if line.startswith("make ")]
    assert len(commands) >= 9
    for command in commands:
        words = re.findall(r'\S+="[^"]*"|\S+', command)[1:]
        words = [w.replace('"', "") for w in words]
        done = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT), *words,
                               f"RESULTS={tmp_path / 'r'}"], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, (command, done.stderr[-1000:])
    assert not (tmp_path / "r").exists()


def test_the_front_door_the_readme_shows_parses():
    shown = re.search(r"`(robust-ssl table1 [^`]*)`", README).group(1)
    args = tables.parser().parse_args(shown.replace("...", "").split()[1:])
    assert (args.table, args.profile, args.seeds, args.jobs) == ("table1", "quick", [0, 1], 2)
