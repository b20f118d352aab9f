"""The package's layout holds: imports flow one way, and only the CLI touches the process.

Read with the standard library's ast, so the test needs nothing installed.
"""

import ast
import sys

from conftest import PACKAGE, ROOT

sys.path.insert(0, str(ROOT))
from healthcheck.constants import GATEWAY_TYPES

#: Decide from plain data; never import a module that talks to the world.
PURE = {"constants", "errors", "text", "times", "model", "activity", "silence", "plan", "report",
        "reference",
        "incidents"}
#: Talk to the world: gateways, the database, files, deliveries, the run, the command line.
EFFECTS = {"bounded", "settings", "gateways", "database", "files", "notify", "run", "cli", "entry"}
#: A gateway client lists and revives; what to do with the answer is decided elsewhere.
NOT_FOR_GATEWAYS = {"plan", "report", "incidents", "silence", "activity", "run", "cli", "notify",
                    "files", "database", "entry"}
#: Only these may print, exit or handle signals (entry prints the missing-package line).
PROCESS_OWNERS = {"cli", "entry"}


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        name = name.removesuffix(".__init__") if name != "__init__" else "__init__"
        found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


def imported(name: str, tree: ast.Module) -> set[str]:
    """The package's top-level modules (gateways as one) that module `name` imports."""
    in_gateways = name.startswith("gateways")
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            if in_gateways and node.level == 1:
                out.add("gateways")
            elif node.module:
                out.add(node.module.split(".")[0])
            else:  # from . import cli
                out |= {alias.name for alias in node.names}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            out |= {n.split(".")[1] for n in names if n.startswith("healthcheck.")}
    return out


def test_every_module_is_placed_in_a_layer():
    top = {name.split(".")[0] for name in modules()} - {"__init__"}
    assert top <= PURE | EFFECTS, f"put these in PURE or EFFECTS: {sorted(top - PURE - EFFECTS)}"


def test_pure_modules_import_no_effect_module():
    for name, tree in modules().items():
        if name in PURE:
            wrong = imported(name, tree) & EFFECTS
            assert not wrong, f"healthcheck.{name} (pure) imports {sorted(wrong)}"


def test_gateways_import_no_decision_nor_run():
    for name, tree in modules().items():
        if name.startswith("gateways"):
            wrong = imported(name, tree) & NOT_FOR_GATEWAYS
            assert not wrong, f"healthcheck.{name} imports {sorted(wrong)}"


def test_only_the_cli_prints_exits_or_handles_signals():
    for name, tree in modules().items():
        if name in PROCESS_OWNERS:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "print":
                raise AssertionError(f"healthcheck.{name} prints (line {node.lineno})")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                    (node.value.id == "sys" and node.attr in ("exit", "stdout", "stderr"))
                    or node.value.id == "signal"):
                raise AssertionError(f"healthcheck.{name} uses {node.value.id}.{node.attr} "
                                     f"(line {node.lineno})")


def test_each_gateway_is_one_module_behind_the_declared_interface():
    gateways = modules()["gateways"]
    table = next(n.value for n in gateways.body if isinstance(n, ast.Assign)
                 and [ast.unparse(t) for t in n.targets] == ["CLIENTS"])
    registered = ast.literal_eval(table)  # one line per gateway: kind -> (module, class)
    assert set(registered) == {"wrapper", "waha", "evolution", "wppconnect"}
    # HEALTHCHECK_GATEWAY is checked against GATEWAY_TYPES: the same gateways, both tables.
    assert set(registered) == set(GATEWAY_TYPES)
    for module, name in registered.values():
        tree = modules()[f"gateways.{module}"]
        classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
        assert [c.name for c in classes] == [name], module
        assert [ast.unparse(b) for c in classes for b in c.bases] == ["Gateway"], module


def test_the_entry_point_is_thin():
    tree = ast.parse((ROOT / "healthcheck_sessions.py").read_text(encoding="utf-8"))
    code = [n for n in tree.body if not isinstance(n, (ast.Expr, ast.Import, ast.ImportFrom))]
    assert len(code) == 1 and isinstance(code[0], ast.If)  # if __name__ == "__main__"


def test_the_gateway_interface_is_declared():
    import sys
    sys.path.insert(0, str(ROOT))
    from healthcheck.gateways import GATEWAYS
    from healthcheck.gateways.base import Gateway
    assert Gateway.__abstractmethods__ == {"list_sessions", "revive"}
    for kind, client in GATEWAYS.items():
        assert issubclass(client, Gateway) and not client.__abstractmethods__, kind


def test_dry_run_is_one_switch():
    """--dry-run chooses the run's effects once, in the CLI: no other code asks whether it is one.

    The report still knows (it words what would have been done), but nothing branches on it.
    """
    for name, tree in modules().items():
        if name == "cli":
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.If, ast.IfExp, ast.While)):
                asked = {n.attr if isinstance(n, ast.Attribute) else getattr(n, "id", None)
                         for n in ast.walk(node.test)}
                assert "dry_run" not in asked, f"healthcheck.{name} line {node.lineno}"


def test_the_readme_and_the_development_guide_draw_every_module():
    # The README's Development section and docs/development.md each draw the tree, one line per
    # module (the gateways may share a line): a module added without its line fails here.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tree = readme[readme.index("## Development"):readme.index("## More")]
    guide = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    for path in sorted(PACKAGE.rglob("*.py")):
        for where, text in (("README.md", tree), ("docs/development.md", guide)):
            assert path.name in text, f"{where} does not draw healthcheck/" \
                                      f"{path.relative_to(PACKAGE)}"
