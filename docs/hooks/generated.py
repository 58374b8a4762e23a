"""mkdocs hook: a line `<!-- output: COMMAND -->` in a page becomes COMMAND's output, run from the
repository root at build time, so that the reference pages are the code's own help and printed
configs and cannot drift from it. A command that fails fails the build."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!-- output: (.+?) -->$", re.MULTILINE)


def output(command: str, page: str) -> str:
    words = shlex.split(command)
    if words[0] == "python":  # the interpreter that runs mkdocs: the suite's environment
        words[0] = sys.executable
    done = subprocess.run(words, cwd=ROOT, capture_output=True, text=True,
                          env=os.environ | {"COLUMNS": "100", "WANDB_MODE": "disabled"})
    if done.returncode:
        raise PluginError(f"{page}: `{command}` exited with {done.returncode}:\n"
                          f"{done.stderr[-2000:]}")
    return f"```text\n$ {command}\n{done.stdout.rstrip()}\n```"


def on_page_markdown(markdown, page, config, files):
    return MARKER.sub(lambda match: output(match.group(1), page.file.src_path), markdown)
