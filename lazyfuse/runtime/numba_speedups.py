"""A faster copy propagation for Numba's parallel compiles: the same result, sooner.

Note: Numba's ``ir_utils.copy_propagate`` (run by the parfor passes of every
``parallel=True`` compile) iterates its data-flow equations to a fixed point and compares
rounds through ``copy.deepcopy`` of a dict of sets of ``(lhs, rhs)`` variable-name pairs.
The pairs are tuples of str, which a deep copy returns as they are: copying each set is
the same. Its initial sets also rebuilt a block's assigned names once per copy. In a
kernel with lazyfuse's math functions inlined (hundreds of blocks) both dominate a
parallel compile: ``benchmarks/bench_compile.py`` times chains of them with Numba's and
with this one (same result: ``tests/test_compile_time.py``). :func:`install` replaces the
function in the two Numba modules that call it, for the Numba versions it was checked
against.
"""

from __future__ import annotations

from typing import Any

import numba
from numba.core import ir_utils
from numba.parfors import parfor

CHECKED_VERSIONS = ("0.60", "0.61", "0.62", "0.63", "0.64", "0.65", "0.66", "0.67", "0.68")
NUMBA_COPY_PROPAGATE = ir_utils.copy_propagate


def copy_propagate(blocks: dict[int, Any], typemap: dict[str, Any]) -> tuple[dict, dict]:
    """Numba's ``copy_propagate`` (in_b = intersection of the predecessors' out, out_b =
    gen_b | (in_b - kill_b), to a fixed point), comparing rounds by copies of the sets."""
    cfg = ir_utils.compute_cfg_from_blocks(blocks)
    entry = cfg.entry_point()
    gen_copies, kill_copies, in_copies, out_copies = _initial_data(blocks, entry, typemap)
    predecessors = {label: [p for p, _ in cfg.predecessors(label)] for label in blocks}
    old_point = None
    new_point = _copied(out_copies)
    while old_point != new_point:
        for label in blocks:
            if label == entry:
                continue
            first, *rest = predecessors[label]
            incoming = out_copies[first].copy()
            for p in rest:
                incoming &= out_copies[p]
            in_copies[label] = incoming
            out_copies[label] = gen_copies[label] | (incoming - kill_copies[label])
        old_point, new_point = new_point, _copied(out_copies)
    return in_copies, out_copies


def _initial_data(blocks: dict[int, Any], entry: int, typemap: dict[str, Any]) -> tuple[dict, ...]:
    """Numba's ``init_copy_propagate_data`` without its quadratic part (it built the set of
    names a block assigns again for every copy of the program): gen, kill, in, out."""
    gen_copies, extra_kill = ir_utils.get_block_copies(blocks, typemap)
    all_copies: set[tuple[str, str]] = set().union(*gen_copies.values())
    kill_copies = {}
    for label, gen_set in gen_copies.items():
        assigned = {lhs for lhs, _ in gen_set}
        extra = extra_kill[label]
        kill_copies[label] = {
            (lhs, rhs)
            for lhs, rhs in all_copies
            if lhs in extra
            or rhs in extra
            or ((lhs, rhs) not in gen_set and (lhs in assigned or rhs in assigned))
        }
    in_copies = {label: all_copies.copy() for label in blocks}
    in_copies[entry] = set()
    out_copies = {label: gen_copies[label] | (in_copies[label] - kill_copies[label]) for label in blocks}
    out_copies[entry] = gen_copies[entry]
    return gen_copies, kill_copies, in_copies, out_copies


def _copied(copies: dict[int, set[tuple[str, str]]]) -> dict[int, set[tuple[str, str]]]:
    return {label: set(pairs) for label, pairs in copies.items()}


def install() -> None:
    """Use :func:`copy_propagate` in Numba's parfor passes (checked Numba versions only)."""
    if numba.__version__.rsplit(".", 1)[0] not in CHECKED_VERSIONS:
        return
    ir_utils.copy_propagate = copy_propagate
    parfor.copy_propagate = copy_propagate
