"""The op table is the one place that says what an elementwise op is: a member of ``Op``
and a row of ``ELEMENTWISE`` (plus fastmath's or cpu_helpers' implementation) make an
op; its public functions, Tensor methods, fusion cost and fast-math template are read
from the row. These tests keep it so, and check every row against its NumPy reference
on every dtype, with the rows' C-library templates (those the CUDA target and
LAZYFUSE_MATH=libm run; the fast-math ones are tested in test_fastmath.py,
test_elementwise.py and test_elementwise_more.py)."""

from __future__ import annotations

import ast
import pathlib
import re

import numpy as np

import lazyfuse as lf
from lazyfuse import config
from lazyfuse.codegen import cpu
from lazyfuse.graph import fuse
from lazyfuse.graph.ops import ELEMENTWISE, EXPENSIVE_COST, Op
from tests.conftest import Case, check_all
from tests.strategies import DTYPES

PACKAGE = pathlib.Path(lf.__file__).parent
# The modules that once listed ops one by one (the enum, the row, fuse.EXPENSIVE,
# cpu.FAST_MATH and its regex, functions.py, tensor.py, __init__); the front-end modules
# (activations, statistics, ...) call the public functions, which is using an op.
REGISTRIES = [
    "graph/fuse.py",
    "graph/interpret.py",
    "graph/names.py",
    "codegen/cpu.py",
    "codegen/cuda.py",
    "functions.py",
    "tensor.py",
    "__init__.py",
]
_OPERATORS = ["NEG", "ABS", "INVERT", "ADD", "SUB", "MUL", "TRUEDIV", "FLOORDIV", "MOD", "POW"]
_OPERATORS += ["AND", "OR", "XOR", "LT", "LE", "GT", "GE", "EQ", "NE"]
# Where a registry names an op by hand, and why (a new entry needs a reason).
NAMED_BY_HAND = {
    # Python's operators, written out in the class body for speed (tensor._operator);
    # astype is a method with a dtype argument
    "tensor.py": {*_OPERATORS, "CAST"},
    # where and astype take other arguments than tensors; round is rint with decimals,
    # clip two selects; stop_gradient (IDENTITY) is lazyfuse/autodiff.py's
    "functions.py": {"WHERE", "CAST", "RINT", "MUL", "TRUEDIV", "MAXIMUM", "MINIMUM", "IDENTITY"},
    # the cast's template is picked by its target dtype
    "codegen/cpu.py": {"CAST"},
}


def _named(path: pathlib.Path) -> list[tuple[str, int]]:
    """What a module names: ``Op.X`` anywhere; functions, classes and variables defined at
    module or class level; string constants that are a name (``"tanh"``) and templates that
    call one (``"tanh_{K}({0})"``, ``"np.tanh({0})"``)."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Op":
            found.append((node.attr, node.lineno))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            template = "{0}" in node.value  # scalar source (an error message may name a function)
            words = re.findall(r"\b([a-z][a-z0-9_]*?)(?:_\{K\}|_f32|_f64|_i|_f)?\(", node.value)
            found += [(w, node.lineno) for w in [node.value, *(words if template else [])]]
    scopes = [tree.body] + [n.body for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    for statement in (s for body in scopes for s in body):
        if isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
            found.append((statement.name, statement.lineno))
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            found += [(n.id, n.lineno) for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return found


def test_an_elementwise_op_is_named_only_by_its_member_and_its_row():
    """No registry names an op (its member, public names or methods) but where the table
    says it is written by hand: adding an op is adding its member and its row."""
    wrong = []
    for module in REGISTRIES:
        named = _named(PACKAGE / module)
        allowed = NAMED_BY_HAND.get(module, set())
        for op, row in ELEMENTWISE.items():
            names = {op.name, *row.public, *row.methods}
            lines = sorted({line for name, line in named if name in names})
            if lines and op.name not in allowed:
                wrong.append(f"{module}:{lines} names {op.name} ({', '.join(sorted(names))})")
    assert not wrong, "an op named outside its row:\n" + "\n".join(wrong)


def test_the_check_sees_an_op_named_by_hand(tmp_path):
    """The scan finds each kind of site it looks for (so the test above can fail)."""
    path = tmp_path / "probe.py"
    path.write_text(
        'class C:\n    tanh = 1\ndef exp2(x):\n    return Op.LOG1P\nT = {"x": "sinh_{K}({0})", "n": "erf"}\n'
    )
    assert {"tanh", "exp2", "LOG1P", "sinh", "erf"} <= {name for name, _ in _named(path)}


def test_every_row_is_public_with_its_methods_and_operators():
    for op, row in ELEMENTWISE.items():
        assert row.public, f"{op.name} has no public name"
        for name in row.public:
            assert callable(getattr(lf, name)), name
            assert name in lf.__all__, name
        for name in row.methods:
            assert callable(getattr(lf.Tensor, name)), name
        if row.operator:
            assert callable(getattr(lf.Tensor, f"__{row.operator}__"))
            assert callable(getattr(lf.Tensor, f"__r{row.operator}__"))


def test_cost_and_fast_math_come_from_the_rows():
    for op, row in ELEMENTWISE.items():
        assert (op in fuse.EXPENSIVE) == (row.cost > 1), op.name
        assert cpu.FAST_MATH.get(op) == row.fast, op.name
        for name in re.findall(r"(\w+)_\{K\}\(", row.fast or ""):
            assert cpu._FAST_MATH_CALL.search(f"t0 = {name}_f32(x0)"), name
    assert Op.MAP in fuse.EXPENSIVE and fuse.cost(lf.exp(lf.asarray(np.ones(2))).node) == EXPENSIVE_COST
    assert fuse.cost(lf.floor(lf.asarray(np.ones(2))).node) == 1


def _values(dtype: np.dtype) -> np.ndarray:
    """Each kind's interesting values (12 of each, so that every dtype's ops share kernels):
    signs, zeros, halves, shift counts past the width, NaN and infinities."""
    if dtype.kind == "b":
        return np.array([True, False, True, True, False, False, True, False, True, True, False, True])
    if dtype.kind == "i":
        return np.array([-70, -3, -1, 0, 1, 2, 5, 31, 33, 64, 7, -8]).astype(dtype)
    return np.array([-3.5, -1, -0.5, -0.0, 0.0, 0.5, 1, 2.5, 7, np.nan, np.inf, -np.inf]).astype(dtype)


def _cases(dtype: np.dtype) -> list[Case]:
    x = _values(dtype)
    y = np.roll(x, 5)
    exponent = np.abs(y) % 5 if dtype.kind == "i" else y  # NumPy refuses negative integer powers
    cases = []
    for op, row in ELEMENTWISE.items():
        name = row.public[0]
        label = f"{name}({dtype})"
        if op is Op.CAST:
            for target in DTYPES:
                cases.append(Case(f"{label} to {target}", lf.astype, np.ndarray.astype, (x, target)))
        elif op is Op.WHERE:
            cases.append(Case(label, lf.where, np.where, (x > x[::-1], x, y)))
        else:
            operands = (x,) if row.arity == 1 else (x, exponent if op is Op.POW else y)
            cases.append(Case(label, getattr(lf, name), row.reference, operands))
    return cases


def test_every_row_matches_its_reference_on_every_dtype(serial_kernels):
    """Each row's function on arrays of each dtype (and a second array for binary ops),
    all in one plan: the dtype NumPy gives (or the error it raises) and the values."""
    with config.override(math="libm"):
        check_all([case for dtype in DTYPES for case in _cases(dtype)])


def test_every_differentiable_op_has_a_rule():
    """A derivative for each op: a row's ``grad`` (elementwise partials, a reduction's
    rule), an entry of autodiff.RULES, or a host step's HOST_RULES (or a listed reason
    why it has none), so a new op cannot silently be treated as a constant."""
    from lazyfuse import autodiff
    from lazyfuse.graph import host
    from lazyfuse.graph.ops import REDUCTION

    for op in Op:
        row = ELEMENTWISE.get(op) or REDUCTION.get(op)
        assert (row is not None and row.grad is not None) or op in autodiff.RULES, op.name
    for name in host.FUNCTIONS:
        assert name in autodiff.HOST_RULES or name in autodiff.NOT_DIFFERENTIABLE_HOSTS, name
