#!/usr/bin/env python3
"""Build healthcheck_sessions.pyz: the whole command in one file, for those who copy one file.

    .venv/bin/python tools/build_pyz.py            # writes dist/healthcheck_sessions.pyz
    .venv/bin/python tools/build_pyz.py -o PATH

The archive holds the healthcheck package with its bytecode, compiled by the Python that runs
this build: build with the Python that will run it (the venv's), so a run loads the bytecode
instead of compiling about 180 KB of source every 15 minutes. Another Python version still runs
it, from the sources. It needs requests and python-dotenv in the Python that runs it, as the
script does, and reads the .env beside the archive:

    */15 * * * * /path/to/panel/.venv/bin/python /path/to/panel/healthcheck_sessions.pyz
"""

import argparse
import py_compile
import shutil
import sys
import tempfile
import zipapp
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MAIN = '''\
import sys

from healthcheck.entry import run

sys.exit(run())
'''


def build(output: Path) -> Path:
    with tempfile.TemporaryDirectory() as folder:
        staging = Path(folder)
        shutil.copytree(ROOT / "healthcheck", staging / "healthcheck",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (staging / "__main__.py").write_text(MAIN, encoding="utf-8")
        for source in sorted((staging / "healthcheck").rglob("*.py")):
            # zipimport reads module.pyc beside module.py; unchecked-hash bytecode needs no
            # source timestamp, which a zip keeps only to two seconds.
            py_compile.compile(str(source), cfile=str(source.with_suffix(".pyc")), doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        output.parent.mkdir(parents=True, exist_ok=True)
        zipapp.create_archive(staging, output, interpreter="/usr/bin/env python3")
    return output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("-o", "--output", type=Path,
                        default=ROOT / "dist" / "healthcheck_sessions.pyz")
    args = parser.parse_args()
    path = build(args.output)
    print(f"built {path} ({path.stat().st_size // 1024} KB, bytecode for Python "
          f"{sys.version_info.major}.{sys.version_info.minor})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
