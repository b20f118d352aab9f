#!/usr/bin/env python3
"""Write the settings table of docs/settings.md from the code's table (healthcheck/reference.py).

    python3 tools/make_docs.py           # rewrite the table
    python3 tools/make_docs.py --check   # exit 1 when docs/settings.md is out of step

The table sits between the two markers below; the text around it is written by hand.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from healthcheck.reference import settings_table

DOC = ROOT / "docs" / "settings.md"
BEGIN = "<!-- settings table: made by tools/make_docs.py from healthcheck/reference.py -->"
END = "<!-- end of the settings table -->"


def rewritten(text: str) -> str:
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{settings_table()}{END}{tail}"


def main() -> int:
    text = DOC.read_text(encoding="utf-8")
    new = rewritten(text)
    if "--check" in sys.argv[1:]:
        if new != text:
            print("docs/settings.md is out of step with healthcheck/reference.py: "
                  "run python3 tools/make_docs.py")
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
