"""Model registries: a params name maps to a builder function.

Each builder takes ``(input_shape, num_classes, **options)`` where ``input_shape`` is the
shape of one sample, e.g. ``(1, 28, 28)``.
"""

from __future__ import annotations
