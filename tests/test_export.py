"""lf.export: the written module, imported from its file, computes what lazyfuse computes,
with numpy and numba only (one test runs it in a fresh virtual environment without
lazyfuse)."""

from __future__ import annotations

import importlib.util
import itertools
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lazyfuse as lf
from lazyfuse import pytree
from lazyfuse.export import export

RNG = np.random.default_rng(7)
_NAMES = itertools.count()
LAZYFUSE_IMPORT = re.compile(r"^\s*(import|from)\s+lazyfuse\b", re.MULTILINE)


def load(path: Path) -> Any:
    """Import the exported file as a module of its own, a new name per file, registered in
    sys.modules as an import does (Numba's cache of its kernels finds it there)."""
    name = f"exported_{next(_NAMES)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lazy(args: tuple[Any, ...]) -> list[Any]:
    return [lf.asarray(a) if isinstance(a, np.ndarray) else a for a in args]


def assert_same_results(got: Any, want: Any, rtol: float = 1e-12) -> None:
    """Equal structure, dtypes and shapes, and values within ``rtol`` (the module's math
    is the C library's, lazyfuse's default its own fast math)."""
    got_leaves, got_structure = pytree.flatten(got)
    want_leaves, want_structure = pytree.flatten(want)
    assert got_structure == want_structure
    for g, w in zip(got_leaves, want_leaves, strict=True):
        assert isinstance(g, np.ndarray)
        assert (g.dtype, g.shape) == (w.dtype, w.shape)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol)


def check_export(tmp_path: Path, fn: Any, args: tuple[Any, ...], rtol: float = 1e-12) -> Any:
    """Export ``fn`` on ``args``; the module's result on them equals lazyfuse's."""
    path = export(fn, tmp_path / "exported.py", args, name="run")
    module = load(path)
    want = lf.compute(fn(*lazy(args)))
    got = module.run(*args)
    assert_same_results(got if isinstance(got, tuple) else (got,), want, rtol)
    return module


def softmax(x: Any) -> Any:
    e = lf.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def dense(x: Any, w: Any, b: Any) -> Any:
    return lf.tanh(x @ w + b)


def test_elementwise_chain_takes_its_python_scalar_as_an_argument(tmp_path):
    def scaled(x, alpha):
        return (x * alpha + 1.0) ** 2 - lf.sqrt(lf.abs(x))

    x = RNG.standard_normal((5, 6)).astype(np.float32)
    module = check_export(tmp_path, scaled, (x, 0.5), rtol=1e-6)
    got = module.run(x, 3.0)  # another value of the scalar: a run-time argument
    assert_same_results((got,), (scaled(lf.asarray(x), 3.0).compute(),), rtol=1e-6)
    assert got.dtype == np.float32  # a Python float stays weak (NEP 50), as in lazyfuse


def test_row_softmax(tmp_path):
    check_export(tmp_path, softmax, (RNG.standard_normal((9, 37)),))


def test_dense_layer_matches_lazyfuse_and_numpy(tmp_path):
    args = (RNG.standard_normal((8, 5)), RNG.standard_normal((5, 3)), RNG.standard_normal(3))
    module = check_export(tmp_path, dense, args)
    x, w, b = args
    np.testing.assert_allclose(module.run(*args), np.tanh(x @ w + b), rtol=1e-12)
    np.testing.assert_allclose(module.run(x.T.copy().T, w, b), np.tanh(x @ w + b), rtol=1e-12)  # F order


def test_full_reduction(tmp_path):
    check_export(tmp_path, lambda x: (x.T * 2.0 - 1.0).sum(), (RNG.standard_normal((40, 30)),))


def test_two_outputs_in_the_structure_returned(tmp_path):
    def two(x, y):
        return {"mean": x.mean(axis=0), "rest": [lf.exp(x) - y, (x > y).sum()]}

    args = (RNG.standard_normal((4, 6)), RNG.standard_normal((4, 6)))
    path = export(two, tmp_path / "two.py", args)
    got = load(path).two(*args)
    assert set(got) == {"mean", "rest"} and isinstance(got["rest"], list)
    assert_same_results(got, lf.compute(two(*lazy(args)))[0])


def test_tensors_export_with_their_inputs_in_order_of_first_appearance(tmp_path):
    x, y = RNG.standard_normal((3, 4)), RNG.standard_normal(4)
    tx, ty = lf.asarray(x), lf.asarray(y)
    path = export((lf.exp(tx) + ty, tx.sum(axis=1) + lf.ones(3)), tmp_path / "tensors.py")
    got = load(path).compute(x, y)  # lf.ones's value is a constant, not a parameter
    assert_same_results(got, (np.exp(x) + y, x.sum(axis=1) + 1))


def test_module_is_standalone_and_says_what_it_was_made_from(tmp_path):
    path = export(softmax, tmp_path / "softmax_module.py", (RNG.standard_normal((2, 3)),))
    text = path.read_text()
    assert not LAZYFUSE_IMPORT.search(text), text
    assert text.startswith('"""Standalone module exported by lazyfuse')
    assert "Made from the function" in text and "softmax" in text and "float64[2,3]" in text
    assert "@njit(" in text and "def softmax(x):" in text
    compile(text, str(path), "exec")


def test_wrong_shapes_and_dtypes_raise_value_error_naming_both(tmp_path):
    args = (RNG.standard_normal((8, 5)), RNG.standard_normal((5, 3)), RNG.standard_normal(3))
    module = load(export(dense, tmp_path / "dense.py", args))
    with pytest.raises(ValueError, match=r"x: expected shape \(8, 5\), got \(7, 5\)"):
        module.dense(args[0][:7], *args[1:])
    with pytest.raises(ValueError, match="b: expected dtype float64, got float32"):
        module.dense(*args[:2], args[2].astype(np.float32))


def test_closure_arrays_are_written_in_and_large_ones_refused(tmp_path):
    weights = RNG.standard_normal((6, 2))
    check_export(tmp_path, lambda x: lf.maximum(x @ weights, 0.0), (RNG.standard_normal((3, 6)),))
    big = np.ones(20_000)
    with pytest.raises(ValueError, match="pass it as an argument"):
        export(lambda x: x + big, tmp_path / "big.py", (np.ones(20_000),))


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: lf.concatenate([lf.exp(x), x[:, :2] * 2], axis=1),
        lambda x: lf.pad(lf.sin(x), ((1, 2), (0, 1))),
        lambda x: lf.repeat(x * 3, np.array([1, 2, 0, 1]), axis=0),
        lambda x: lf.grad(lambda v: (lf.exp(v[1:3, ::2]) ** 2).sum())(x),  # a host step of autodiff
    ],
    ids=["concatenate", "pad", "repeat", "index_grad"],
)
def test_host_steps(tmp_path, fn):
    module = check_export(tmp_path, fn, (RNG.standard_normal((4, 5)),))
    assert re.search(r"# step \d+: NumPy step", Path(module.__file__).read_text())


def test_gather_checks_its_indices(tmp_path):
    table, index = RNG.standard_normal((6, 3)), np.array([0, 5, -1, 2])
    module = check_export(tmp_path, lambda t, i: (t[i] * 2).sum(axis=1), (table, index))
    with pytest.raises(IndexError, match="index 6 is out of bounds for axis 0 with size 6"):
        module.run(table, np.array([0, 6, 1, 2]))


def test_a_gather_gradient_exports_its_scatter_kernel_and_checks(tmp_path):
    table, ids = RNG.standard_normal((7, 3)), np.array([[0, 6], [-1, 6]])
    fn = lambda t, i: lf.grad(lambda t: (t[i] ** 2).sum())(t)  # noqa: E731
    module = check_export(tmp_path, fn, (table, ids))
    assert "+=" in Path(module.__file__).read_text()
    with pytest.raises(IndexError, match="index 7 is out of bounds for axis 0 with size 7"):
        module.run(table, np.array([[0, 7], [1, 2]]))


def test_what_cannot_be_exported_raises_before_writing(tmp_path):
    path = tmp_path / "mapped.py"
    with pytest.raises(NotImplementedError, match="user function"):
        export(lambda x: lf.map(lambda v: v * 2.0 + 1.0, x), path, (np.ones(4),))
    assert not path.exists()
    with pytest.raises(TypeError, match="example argument"):
        export(lambda x: x * 2, path, ([1.0, 2.0],))


def _site_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))).parent


def _venv_with_numba_only(root: Path) -> Path:
    """A virtual environment whose only packages are numpy, numba and llvmlite (links
    to this environment's copies); its python, or a skip where one cannot be made."""
    venv = root / "venv"
    made = subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], capture_output=True, text=True
    )
    python = venv / "bin" / "python"
    if made.returncode != 0 or not python.exists():
        pytest.skip(f"cannot make a virtual environment here: {made.stderr.strip()[:200]}")
    packages = root / "numba_only"
    packages.mkdir()
    for name in ("numpy", "numba", "llvmlite"):
        site = _site_dir(name)
        for entry in [*site.glob(f"{name}"), *site.glob(f"{name}.libs"), *site.glob(f"{name}-*.dist-info")]:
            (packages / entry.name).symlink_to(entry)
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site_packages) / "numba_only.pth").write_text(f"{packages}\n")
    return python


CHECK_IN_VENV = """
    import importlib.util, sys
    import numpy as np
    assert importlib.util.find_spec("lazyfuse") is None, "lazyfuse is importable"
    sys.path.insert(0, sys.argv[1])
    import exported
    x, w, b = (np.load(sys.argv[2])[k] for k in ("x", "w", "b"))
    np.save(sys.argv[3], exported.dense(x, w, b))
    assert "lazyfuse" not in sys.modules
"""


def test_runs_in_a_fresh_virtual_environment_without_lazyfuse(tmp_path):
    python = _venv_with_numba_only(tmp_path)
    args = (RNG.standard_normal((8, 5)), RNG.standard_normal((5, 3)), RNG.standard_normal(3))
    module_dir = tmp_path / "module"
    module_dir.mkdir()
    export(dense, module_dir / "exported.py", args)
    np.savez(tmp_path / "args.npz", x=args[0], w=args[1], b=args[2])
    result = tmp_path / "result.npy"
    command = [str(python), "-I", "-c", textwrap.dedent(CHECK_IN_VENV), str(module_dir)]
    ran = subprocess.run(
        [*command, str(tmp_path / "args.npz"), str(result)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    np.testing.assert_allclose(np.load(result), dense(*lazy(args)).compute(), rtol=1e-12)
