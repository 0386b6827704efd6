"""Contractions: einsum, tensordot, vecdot, outer (views, products through matmul, reductions).

Every contraction is lowered to ops that exist: each operand is seen through views
(a diagonal, a permutation, a reshape), two operands that both keep an axis of their
own and share a summed one go through matmul (batched over the axes both keep), and
any other product is an elementwise multiply followed by a sum, which fuse into one
kernel (``einsum("ij,ij->i")`` is one pass over both operands).
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lazyfuse.errors import AxisError, LazyfuseError, ShapeError
from lazyfuse.graph import dtypes, shapes
from lazyfuse.tensor import Tensor, asarray

__all__ = ["einsum", "outer", "tensordot", "vecdot"]

Label = str  # a letter, or "...k" for the k-th axis of the broadcast ellipsis block


@dataclass(frozen=True)
class _Term:
    """An operand and the label of each of its axes (distinct once diagonals are taken)."""

    tensor: Tensor
    labels: tuple[Label, ...]


# parsing -------------------------------------------------------------------------


def _split_operand(spec: str, where: str) -> tuple[list[str], bool]:
    """The letters of one operand's subscripts around its '...' (marked by "..."), and
    whether it has one."""
    has_ellipsis = "..." in spec
    rest = spec.replace("...", "", 1)
    if "." in rest:
        raise ShapeError(
            f"einsum: subscripts of {where} contain a '.' that is not part of an ellipsis ('...')"
        )
    bad = [c for c in rest if c not in string.ascii_letters]
    if bad:
        raise ShapeError(f"einsum: invalid subscript {bad[0]!r} in {where}; subscripts must be letters")
    before, _, after = spec.partition("...") if has_ellipsis else (spec, "", "")
    return [*before, *(["..."] if has_ellipsis else []), *after], has_ellipsis


def _parse(subscripts: str, tensors: Sequence[Tensor]) -> tuple[list[_Term], tuple[Label, ...]]:
    """Operand terms (ellipses expanded to right-aligned "...k" labels, repeated labels
    kept) and the output labels, explicit or by NumPy's implicit rule."""
    spec = subscripts.replace(" ", "")
    inputs, arrow, output = spec.partition("->")
    parts = inputs.split(",")
    if len(parts) != len(tensors):
        few = "fewer" if len(tensors) < len(parts) else "more"
        raise ShapeError(
            f"einsum: {few} operands ({len(tensors)}) than the subscripts {subscripts!r} "
            f"specify ({len(parts)})"
        )
    split = [_split_operand(p, f"operand {k}") for k, p in enumerate(parts)]
    widths = [t.ndim - (len(s) - e) for (s, e), t in zip(split, tensors, strict=True)]
    for k, ((letters, has_ellipsis), width) in enumerate(zip(split, widths, strict=True)):
        if width < 0 or (width > 0 and not has_ellipsis):
            raise ShapeError(
                f"einsum: operand {k} has {tensors[k].ndim} dimensions but its subscripts {parts[k]!r} "
                f"name {len(letters) - has_ellipsis}{' and no ellipsis' if not has_ellipsis else ''}"
            )
    block = max(widths, default=0)
    ellipsis = tuple(f"...{i}" for i in range(block))
    terms = [
        _Term(t, tuple(_expand(letters, ellipsis[block - w :])))
        for (letters, _), w, t in zip(split, widths, tensors, strict=True)
    ]
    if not arrow:
        letters = [c for operand, _ in split for c in operand if c != "..."]
        single = sorted(c for c in set(letters) if letters.count(c) == 1)
        return terms, (*ellipsis, *single)
    return terms, _output_labels(output, ellipsis, terms, subscripts)


def _expand(letters: list[str], ellipsis: tuple[Label, ...]) -> list[Label]:
    out: list[Label] = []
    for c in letters:
        out.extend(ellipsis if c == "..." else [c])
    return out


def _output_labels(
    output: str, ellipsis: tuple[Label, ...], terms: list[_Term], subscripts: str
) -> tuple[Label, ...]:
    if "->" in output:
        raise ShapeError(f"einsum: subscripts {subscripts!r} contain '->' more than once")
    letters, has_ellipsis = _split_operand(output, "the output") if output else ([], False)
    if ellipsis and not has_ellipsis:
        raise ShapeError(
            f"einsum: the operands have {len(ellipsis)} broadcast dimension(s) under '...' but the output "
            f"subscripts {output!r} have no '...' to put them"
        )
    seen = {label for term in terms for label in term.labels}
    for c in letters:
        if c != "..." and c not in seen:
            raise ShapeError(f"einsum: output subscript {c!r} never appears in an input of {subscripts!r}")
        if letters.count(c) > 1:
            raise ShapeError(f"einsum: output subscript {c!r} appears more than once in {subscripts!r}")
    return tuple(_expand(letters, ellipsis))


def _label_sizes(terms: list[_Term], name: str) -> dict[Label, int]:
    """Each label's size: equal in all operands, or 1 in some (broadcast, as NumPy's)."""
    sizes: dict[Label, set[int]] = {}
    for k, term in enumerate(terms):
        for label, size in zip(term.labels, term.tensor.shape, strict=True):
            own = [s for lab, s in zip(term.labels, term.tensor.shape, strict=True) if lab == label]
            if len(set(own)) > 1:
                raise ShapeError(
                    f"{name}: the axes of operand {k} labelled {label!r} (a diagonal) have different "
                    f"sizes {own}; they must be equal"
                )
            sizes.setdefault(label, set()).add(size)
    result = {}
    for label, found in sizes.items():
        if len(found - {1}) > 1:
            shown = ", ".join(str(t.tensor.shape) for t in terms)
            raise ShapeError(
                f"{name}: operands of shapes {shown} do not broadcast: subscript {label!r} has sizes "
                f"{sorted(found)} (each must be equal or 1)"
            )
        result[label] = min(found - {1}, default=1)
    return result


# lowering ------------------------------------------------------------------------


def _diagonal(term: _Term) -> _Term:
    """Each repeated label taken once, as a view: its axes moved last and flattened, then
    every ``1 + n + ... + n**(k-1)``-th element (the entries whose k indices are equal).
    Note: the flattening reshape copies an operand that is not C-contiguous there."""
    for label in dict.fromkeys(term.labels):
        where = [i for i, lab in enumerate(term.labels) if lab == label]
        if len(where) < 2:
            continue
        rest = [i for i in range(len(term.labels)) if i not in where]
        n = term.tensor.shape[where[0]]
        moved = term.tensor.transpose(*rest, *where)
        kept = tuple(term.tensor.shape[i] for i in rest)
        flat = moved.reshape(*kept, n ** len(where))
        step = sum(n**i for i in range(len(where)))
        diagonal = flat[(Ellipsis, slice(None, None, step))]
        term = _Term(diagonal, (*(term.labels[i] for i in rest), label))
    return term


def _summed(term: _Term, labels: set[Label], dtype: np.dtype) -> _Term:
    """``term`` summed over ``labels`` in ``dtype`` (NumPy's einsum accumulates in the
    result dtype: an int32 sum wraps, a bool one is a logical or)."""
    axes = tuple(i for i, lab in enumerate(term.labels) if lab in labels)
    if not axes:
        return term
    total = term.tensor.sum(axis=axes).astype(dtype)
    return _Term(total, tuple(lab for lab in term.labels if lab not in labels))


def _aligned(term: _Term, order: Sequence[Label]) -> Tensor:
    """``term``'s tensor with its axes in ``order``'s order and size 1 where it lacks one."""
    present = [lab for lab in order if lab in term.labels]
    moved = term.tensor.transpose(tuple(term.labels.index(lab) for lab in present))
    return moved.reshape(tuple(moved.shape[present.index(lab)] if lab in present else 1 for lab in order))


def _matrix(
    term: _Term, batch: list[Label], rows: list[Label], cols: list[Label], sizes: dict[Label, int]
) -> Tensor:
    """``term`` as a stack of matrices (*batch, rows, cols), the row and column labels
    flattened; a size-1 axis among them is broadcast to its label's size."""
    moved = _aligned(term, [*batch, *rows, *cols])
    head = moved.shape[: len(batch)]
    full = moved.broadcast_to((*head, *(sizes[lab] for lab in [*rows, *cols])))
    m, n = math.prod(sizes[lab] for lab in rows), math.prod(sizes[lab] for lab in cols)
    return full.reshape((*head, m, n))


def _product(a: _Term, b: _Term, keep: set[Label], sizes: dict[Label, int], dtype: np.dtype) -> _Term:
    """``a`` times ``b``, summed over the labels they share that nothing after needs.
    Through matmul when each also has labels of its own (a matrix product); otherwise
    a broadcast multiply and a sum, which fuse into one kernel."""
    shared = [lab for lab in a.labels if lab in b.labels]
    summed = [lab for lab in shared if lab not in keep]
    batch = [lab for lab in shared if lab in keep]
    free_a = [lab for lab in a.labels if lab not in shared]
    free_b = [lab for lab in b.labels if lab not in shared]
    if summed and free_a and free_b:
        product = _matrix(a, batch, free_a, summed, sizes) @ _matrix(b, batch, summed, free_b, sizes)
        shape = (*product.shape[: len(batch)], *(sizes[lab] for lab in [*free_a, *free_b]))
        return _Term(product.reshape(shape), (*batch, *free_a, *free_b))
    order = (*a.labels, *free_b)
    return _summed(_Term(_aligned(a, order) * _aligned(b, order), order), set(summed), dtype)


def _contract(
    terms: list[_Term], output: tuple[Label, ...], sizes: dict[Label, int], dtype: np.dtype
) -> Tensor:
    """The einsum of terms with distinct labels each, all of ``dtype``: labels only one
    term has (and the output lacks) summed first, then products from left to right."""

    def needed(k: int) -> set[Label]:
        """The labels something after term k needs: the output and the later terms."""
        return {lab for other in terms[k + 1 :] for lab in other.labels} | set(output)

    def elsewhere(k: int) -> set[Label]:
        return {lab for j, other in enumerate(terms) if j != k for lab in other.labels} | set(output)

    terms = [_summed(t, set(t.labels) - elsewhere(k), dtype) for k, t in enumerate(terms)]
    result = terms[0]
    for k in range(1, len(terms)):
        result = _product(result, terms[k], needed(k), sizes, dtype)
    result = _summed(result, set(result.labels) - set(output), dtype)
    return _aligned(result, output).broadcast_to(tuple(sizes[lab] for lab in output))


# public functions ------------------------------------------------------------------


def einsum(subscripts: str, *operands: Any) -> Tensor:
    """NumPy's ``einsum`` with subscripts (explicit ``->`` or NumPy's implicit output:
    the ellipsis axes, then the letters that appear once, in alphabetical order), ``...``
    broadcasting, size-1 broadcasting and repeated letters in one operand (a diagonal).
    The result dtype is ``np.result_type`` of the operands, and sums accumulate in it,
    as NumPy's do. Two operands go through matmul when each has a letter of its own and
    they share a summed one; other products are a multiply and a sum in one kernel."""
    if not isinstance(subscripts, str):
        raise LazyfuseError(
            "einsum: subscripts must be a string such as 'ij,jk->ik'; the interleaved form "
            "einsum(a, [0, 1], b, [1, 2]) is not supported"
        )
    if not operands:
        raise ShapeError(f"einsum: no operands given for the subscripts {subscripts!r}")
    terms, output = _parse(subscripts, [asarray(o) for o in operands])
    return _contract_terms(terms, output, "einsum")


def _contract_terms(terms: list[_Term], output: Sequence[Label], name: str) -> Tensor:
    """The contraction of labelled operands (repeated labels allowed) in NumPy's result
    dtype of the operands, which every product and sum computes in."""
    sizes = _label_sizes(terms, name)
    dtype = dtypes.result_type(name, *[t.tensor.dtype for t in terms])
    terms = [_diagonal(_Term(t.tensor.astype(dtype), t.labels)) for t in terms]
    return _contract(terms, tuple(output), sizes, dtype)


def _letters(count: int, start: int = 0) -> tuple[Label, ...]:
    return tuple(f"t{start + i}" for i in range(count))


def _tensordot_axes(axes: Any, a: Tensor, b: Tensor) -> tuple[list[int], list[int]]:
    """NumPy's ``axes`` argument: an int N (the last N of a, the first N of b) or a pair of
    sequences (or ints), as non-negative axes of equal sizes."""
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
        if axes < 0 or axes > min(a.ndim, b.ndim):
            raise AxisError(
                f"tensordot: axes={axes} must be between 0 and the smaller rank ({a.ndim} and {b.ndim})"
            )
        pair: Any = (range(a.ndim - axes, a.ndim), range(axes))
    else:
        pair = axes
    try:
        given_a, given_b = pair
    except (TypeError, ValueError):
        raise TypeError(
            f"tensordot: axes must be an int or a pair of sequences of ints, got {axes!r}"
        ) from None
    listed = [list(g) if isinstance(g, (Sequence, range)) else [g] for g in (given_a, given_b)]
    axes_a = [shapes.normalize_axis("tensordot", x, a.ndim) for x in listed[0]]
    axes_b = [shapes.normalize_axis("tensordot", x, b.ndim) for x in listed[1]]
    if len(set(axes_a)) < len(axes_a) or len(set(axes_b)) < len(axes_b):
        raise AxisError(f"tensordot: repeated axis in {axes!r}")
    sizes_a, sizes_b = [a.shape[x] for x in axes_a], [b.shape[x] for x in axes_b]
    if sizes_a != sizes_b:
        raise ShapeError(
            f"tensordot: shape-mismatch for sum: axes {axes_a} of shape {a.shape} have sizes {sizes_a}, "
            f"axes {axes_b} of shape {b.shape} have sizes {sizes_b}"
        )
    return axes_a, axes_b


def tensordot(a: Any, b: Any, axes: Any = 2) -> Tensor:
    """NumPy's ``tensordot``: the sum of products over ``axes`` (an int N: the last N axes
    of ``a`` with the first N of ``b``; or a pair of sequences of axes), the remaining axes
    of ``a`` then of ``b``; a matrix product through matmul, or a plain product (N = 0)."""
    x, y = asarray(a), asarray(b)
    axes_a, axes_b = _tensordot_axes(axes, x, y)
    labels_a = list(_letters(x.ndim))
    labels_b = list(_letters(y.ndim, start=x.ndim))
    for i, j in zip(axes_a, axes_b, strict=True):
        labels_b[j] = labels_a[i]
    output = (
        *(lab for lab in labels_a if lab not in labels_b),
        *(lab for lab in labels_b if lab not in labels_a),
    )
    return _contract_terms([_Term(x, tuple(labels_a)), _Term(y, tuple(labels_b))], output, "tensordot")


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Tensor:
    """NumPy 2's ``vecdot`` of real arrays: ``sum(x1 * x2, axis)``, the other axes
    broadcast; the axis must have the same size in both (NumPy's gufunc rule)."""
    x, y = asarray(x1), asarray(x2)
    for k, t in enumerate((x, y)):
        if t.ndim == 0:
            raise ShapeError(
                f"vecdot: operand {k} is 0-d; it needs at least 1 dimension (signature (n),(n)->())"
            )
    ax, ay = shapes.normalize_axis("vecdot", axis, x.ndim), shapes.normalize_axis("vecdot", axis, y.ndim)
    if x.shape[ax] != y.shape[ay]:
        raise ShapeError(
            f"vecdot: axis {axis} has size {x.shape[ax]} in shape {x.shape} and {y.shape[ay]} in shape "
            f"{y.shape}; they must be equal"
        )
    ndim = max(x.ndim, y.ndim) - 1
    rest = _letters(ndim)
    labels_x = [*rest[ndim - (x.ndim - 1) :], "n"]
    labels_y = [*rest[ndim - (y.ndim - 1) :], "n"]
    labels_x.insert(ax, labels_x.pop())
    labels_y.insert(ay, labels_y.pop())
    return _contract_terms([_Term(x, tuple(labels_x)), _Term(y, tuple(labels_y))], rest, "vecdot")


def outer(a: Any, b: Any) -> Tensor:
    """NumPy's ``outer``: ``a.ravel()[:, None] * b.ravel()[None, :]`` (one kernel)."""
    x, y = asarray(a).reshape(-1), asarray(b).reshape(-1)
    return x[:, None] * y[None, :]
