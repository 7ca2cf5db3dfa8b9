"""List the functions over 80 lines and the modules over 500 lines in latentlab/ and gui/ (the house's
limits, docs/architecture.md). Usage: python scripts/long_code.py [REPO]; exits 0 and prints the lists."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

FUNCTION_MAX, MODULE_MAX = 80, 500


def long_code(root: Path) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    funcs, mods = [], []
    for path in sorted([*root.glob("latentlab/**/*.py"), *root.glob("gui/**/*.py")]):
        src, name = path.read_text(encoding="utf-8"), str(path.relative_to(root))
        if src.count("\n") > MODULE_MAX:
            mods.append((src.count("\n"), name))
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_MAX:
                    funcs.append((length, f"{name}:{node.lineno} {node.name}"))
    return sorted(funcs, reverse=True), sorted(mods, reverse=True)


if __name__ == "__main__":
    funcs, mods = long_code(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]))
    print(f"functions over {FUNCTION_MAX} lines: {len(funcs)}")
    print("\n".join(f"  {n:4d}  {where}" for n, where in funcs))
    print(f"modules over {MODULE_MAX} lines: {len(mods)}")
    print("\n".join(f"  {n:4d}  {where}" for n, where in mods))
