"""The Python the benchmarks run zdir's commands under: what a user's install leaves."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def user_python(venv: Path) -> str:
    """The Python a user's ``pip install zdir`` gives: a venv with pyzmq and msgpack alone.

    The checkout's own .venv holds zdir as an editable install, whose import hook
    (pathlib, urllib.parse, importlib.util at every start) adds about 20 ms to each
    command; a user's wheel install has none. zdir itself comes from PYTHONPATH (the
    tree under test, see ``child_env``). Built once, with the running pyzmq and
    msgpack versions; without it (no package index) the running Python is used.
    """
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if python.exists():
        return str(python)
    import msgpack
    import zmq

    wanted = [f"pyzmq=={zmq.__version__}", f"msgpack=={'.'.join(map(str, msgpack.version))}"]
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                       capture_output=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *wanted], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(venv, ignore_errors=True)
        print(f"note: no user venv ({exc}); zdir runs under {sys.executable}", file=sys.stderr)
        return sys.executable
    return str(python)
