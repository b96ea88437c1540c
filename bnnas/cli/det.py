"""``bnnas det`` / ``tools/det.py``: ``mim train|test mmdet ...`` with the plugin's error as the last line when the
run stops on bad input.

    python tools/det.py train configs/bnnas_effdet_demo.py --gpus 0 --work-dir work_dirs/demo
    python tools/det.py test  configs/bnnas_effdet_demo.py --gpus 0 --checkpoint work_dirs/demo/epoch_16.pth

Arguments after ``train``/``test`` are mim's (the package, mmdet, is implied). mim runs mmdet's script in a child
process and raises ``CalledProcessError`` when it fails, so its traceback would otherwise be the last thing printed.
Here the child's plugin (``mmdet_plugin.errors``) leaves its one-line message in a temporary file, and this tool
prints it last and exits with status 2. The child runs with this interpreter first on PATH (mim calls ``python``)
and the directory holding this ``bnnas`` first on PYTHONPATH (so ``custom_imports=['mmdet_plugin']`` loads the plugin
next to it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout (or site-packages) holding bnnas/ and mmdet_plugin/
ERROR_FILE_ENV = "BNNAS_ERROR_FILE"  # same name as mmdet_plugin.errors.ERROR_FILE_ENV (importing it loads mmdet)


def _child_env(error_file: str) -> None:
    os.environ[ERROR_FILE_ENV] = error_file
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in paths if p != str(ROOT)])


def main(argv: list[str] | None = None) -> int:
    """Run ``mim train|test mmdet ARGS``; the exit code (2 with the plugin's one-line error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    if not argv or argv[0] not in ("train", "test") or len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    from mim.cli import cli

    with tempfile.TemporaryDirectory() as tmp:
        error_file = str(Path(tmp) / "error.txt")
        _child_env(error_file)
        try:
            cli.main(args=[argv[0], "mmdet", *argv[1:]], prog_name="mim", standalone_mode=False)
            return 0
        except subprocess.CalledProcessError as e:
            status = e.returncode
        except SystemExit as e:  # mim reports some failures itself and exits
            status = e.code if isinstance(e.code, int) else 1
            if status == 0:
                return 0
        msg = Path(error_file).read_text().strip() if Path(error_file).is_file() else ""
    sys.stdout.flush()
    if msg:
        print(f"error: {msg}", file=sys.stderr)
        return 2
    print(f"error: mim {argv[0]} failed (exit status {status}); see the output above", file=sys.stderr)
    return status or 1
