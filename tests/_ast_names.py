"""What a module's source binds, read with :mod:`ast` (for the tests that check names without
importing the module)."""

from __future__ import annotations

import ast


def bound_names(tree: ast.Module, *, imports: bool = True) -> set[str]:
    """The names ``tree`` binds at its top level: functions, classes, assignments and, with
    ``imports``, the names it imports (what ``from module import name`` can take)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif imports and isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
    return names
