"""lazyfuse: lazy NumPy-style expressions compiled to Numba kernels on .compute().

Each front-end module lists its public names in ``__all__``; this module re-exports
them, so a new function is one definition and one entry there.
"""

from typing import Any

from lazyfuse import (
    activations,
    autodiff,
    contractions,
    creation,
    functions,
    indexing,
    joining,
    protocols,
    scans,
    statistics,
)
from lazyfuse.activations import *  # noqa: F403 (each module's __all__)
from lazyfuse.autodiff import *  # noqa: F403
from lazyfuse.contractions import *  # noqa: F403
from lazyfuse.creation import *  # noqa: F403
from lazyfuse.errors import (
    AxisError,
    AxisTypeError,
    ConcretizationError,
    DomainError,
    DTypeError,
    GradError,
    LazyfuseError,
    ShapeError,
    UserFunctionError,
)
from lazyfuse.export import export
from lazyfuse.functions import *  # noqa: F403
from lazyfuse.indexing import *  # noqa: F403
from lazyfuse.jit import jit
from lazyfuse.joining import *  # noqa: F403
from lazyfuse.profile import Profile, peak, profile
from lazyfuse.protocols import *  # noqa: F403
from lazyfuse.runtime.compile import KernelCompileError
from lazyfuse.scans import *  # noqa: F403
from lazyfuse.statistics import *  # noqa: F403
from lazyfuse.tensor import Tensor, asarray, cache_info, compute, explain, visualize
from lazyfuse.version import __version__

_MODULES = (
    functions,
    creation,
    indexing,
    activations,
    statistics,
    joining,
    contractions,
    scans,
    protocols,
    autodiff,
)

__all__ = [
    "AxisError",
    "AxisTypeError",
    "ConcretizationError",
    "DTypeError",
    "DomainError",
    "GradError",
    "KernelCompileError",
    "LazyfuseError",
    "Profile",
    "ShapeError",
    "Tensor",
    "UserFunctionError",
    "__version__",
    "asarray",
    "cache_info",
    "compute",
    "explain",
    "export",
    "jit",
    "peak",
    "profile",
    "visualize",
    *[name for module in _MODULES for name in module.__all__],
]

__array_api_version__ = "2023.12"

SUPPORTED_LIST = "README.md, section 'What lazyfuse supports' (and its 'Not supported' list)"


def __getattr__(name: str) -> Any:
    """A name lazyfuse lacks: say so, and where the list of what it has is."""
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(
        f"module 'lazyfuse' has no attribute {name!r}: lazyfuse does not support it; "
        f"see {SUPPORTED_LIST} for what it has and the workarounds"
    )
