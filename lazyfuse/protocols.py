"""NumPy's protocols (__array_ufunc__, __array_function__), the Array API's names and namespace, and scalars out of tensors."""

from __future__ import annotations

__all__: list[str] = []
