"""The error and warning lines the command can print, found in its sources.

Used by the test that keeps the README's troubleshooting table in step with the script: each
message's first fixed phrase (the text before the first value put into it, or the first long
fixed piece) must appear in that table.
"""

import ast
from pathlib import Path

STATES = {"WARNING", "CRITICAL", "UNKNOWN"}
KEY_CHARS = 40


def _pieces(node) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        out, current = [], ""
        for value in node.values:
            if isinstance(value, ast.Constant):
                current += value.value
            else:
                out.append(current)
                current = ""
        return out + [current]
    if isinstance(node, ast.BinOp):
        return _pieces(node.left) + _pieces(node.right)
    return []


def _key(node):
    """The first fixed piece of 12 or more characters, cut to about 40 at a word boundary."""
    for piece in _pieces(node):
        piece = piece.strip(" :;,.(")
        if len(piece) >= 12:
            if len(piece) > KEY_CHARS:
                piece = piece[:KEY_CHARS].rsplit(" ", 1)[0]
            return piece
    return None


def _messages(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in ("HealthcheckError", "warn") and node.args:
                yield node.args[0]
            if name == "Report":
                yield from (k.value for k in node.keywords if k.arg == "error")
            elif (name == "Kick" and len(node.args) == 2
                  and isinstance(node.args[0], ast.Constant) and node.args[0].value == "failed"):
                yield node.args[1]
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2:
            state = node.elts[0]
            if isinstance(state, ast.Name) and state.id in STATES:
                yield node.elts[1]
        elif isinstance(node, ast.FunctionDef) and node.name.startswith("_describe"):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return) and inner.value is not None:
                    yield inner.value


def error_phrases(*sources: Path) -> set[str]:
    """Return the key phrase of every error or warning line the command's sources can print."""
    phrases = set()
    for source in sources:
        tree = ast.parse(source.read_text(encoding="utf-8"))
        phrases |= {key for key in map(_key, _messages(tree)) if key}
    return phrases
