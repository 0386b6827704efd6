"""Where lf.profile's measurements come from: with the ``profile`` setting on (inside
``with lf.profile()``, or LAZYFUSE_PROFILE=1), the CPU runtime times every kernel call,
float product (BLAS) and host step and hands it to :func:`record`; replays and direct
calls are off then, so each call is seen. The collectors (lazyfuse/profile.py) turn the
events into a table against the machine's peak."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Event:
    """One timed call: ``kind`` is "kernel", "blas" or "host"; ``name`` the kernel's (or
    the step's) name; ``call`` the KernelCall (its spec and the nodes it computes);
    ``bytes_read`` / ``bytes_written`` what the arrays it was given hold; ``extents`` the
    loop extents a kernel ran with (a plan made at other sizes is resized), for a product
    the length of its contracted axis, () for a host step."""

    kind: str
    name: str
    call: Any
    seconds: float
    bytes_read: int
    bytes_written: int
    elements: int
    extents: tuple[int, ...] = ()


COLLECTORS: list[Any] = []  # objects with .add(event), innermost last


def record(
    kind: str,
    name: str,
    call: Any,
    arrays: list[np.ndarray],
    outputs: list[np.ndarray],
    started: float,
    extents: tuple[int, ...],
) -> None:
    seconds = time.perf_counter() - started
    if not COLLECTORS:
        return
    read = sum(_bytes_of(a) for a in arrays)
    written = sum(o.nbytes for o in outputs)
    elements = max((o.size for o in outputs), default=0)
    event = Event(kind, name, call, seconds, read, written, elements, tuple(extents))
    for collector in COLLECTORS:
        collector.add(event)


def _bytes_of(a: np.ndarray) -> int:
    """The bytes an array's distinct elements hold (a broadcast is read once)."""
    if not a.size:
        return 0
    distinct = 1
    for n, stride in zip(a.shape, a.strides, strict=True):
        if stride != 0:
            distinct *= n
    return distinct * a.itemsize
