"""The public names of ``hhsim``: imported when first used, and visible to static tools."""

import ast
import sys
from pathlib import Path

import hhsim


def test_static_imports_name_the_same_public_api_as_the_lazy_table():
    """``hhsim/__init__.py`` lists the public names twice: in ``_PUBLIC`` (imported on first
    use) and in its ``if TYPE_CHECKING:`` block (read by type checkers and by griffe for the
    documentation site's API reference). They must agree."""
    tree = ast.parse(Path(hhsim.__file__).read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If))
    static = {alias.asname: node.module for node in block.body for alias in node.names}
    assert static == hhsim._PUBLIC
    for name, module in static.items():
        assert getattr(hhsim, name) is getattr(sys.modules[module], name)
