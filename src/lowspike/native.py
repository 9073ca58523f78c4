"""The package's compiled kernels: C files beside the modules that use them (``snn/leaky_kernels.c``,
``data/audio_kernels.c``), each built once per machine and source with the system C compiler
(``$CC``, else ``cc``) into ``~/.cache/lowspike/kernels`` (``LOWSPIKE_KERNEL_CACHE`` overrides)
and loaded with ctypes.

A kernel computes what its module's eager PyTorch code computes, the same float operations in
the same order (``-ffp-contract=off``, no fast-math), so the results are the same bits (each
module's tests check it), in one pass over memory instead of several. ``LOWSPIKE_NATIVE=0`` turns
them off (the switch changes speed, never results). Where no compiler works, one warning is
printed and the eager code runs.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import os
import platform
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import torch

FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC")
SWITCH = "LOWSPIKE_NATIVE"
BLOCK = 64
"""Items per block of the C loops: a thread's range starts at a multiple of it."""

_lock = threading.Lock()
_libraries: dict[Path, ctypes.CDLL | None] = {}
_pool: list[ThreadPoolExecutor] = []


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags")):
                return line
    except OSError:
        pass
    return platform.processor()


def library_path(source: Path) -> Path:
    """Where the library of ``source`` for these flags and this CPU (``-march=native``) lives."""
    key = hashlib.sha256(source.read_bytes() + repr(FLAGS).encode() + _cpu_model().encode()
                         + platform.machine().encode()).hexdigest()[:16]
    cache = Path(os.environ.get("LOWSPIKE_KERNEL_CACHE", Path.home() / ".cache" / "lowspike" / "kernels"))
    return cache / f"{source.stem}-{key}.so"


def _build(source: Path, target: Path) -> None:
    """Compile under an exclusive lock (parallel stages build it once), then rename into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        compiler = os.environ.get("CC", "cc")
        done = subprocess.run([compiler, *FLAGS, "-o", str(partial), str(source)], capture_output=True, text=True)
        if done.returncode != 0:
            partial.unlink(missing_ok=True)
            raise RuntimeError(f"{compiler} failed: {done.stderr.strip().splitlines()[-1] if done.stderr else ''}")
        os.replace(partial, target)


def library(source: Path, signatures: dict[str, list]) -> ctypes.CDLL | None:
    """The loaded kernels of ``source`` (``signatures``: each function's ctypes argument types),
    or None when they are switched off or cannot be built (said once per source)."""
    if os.environ.get(SWITCH, "1") == "0":
        return None
    with _lock:
        if source not in _libraries:
            try:
                path = library_path(source)
                if not path.exists():
                    _build(source, path)
                lib = ctypes.CDLL(str(path))
                for name, argtypes in signatures.items():
                    getattr(lib, name).argtypes = argtypes
                    getattr(lib, name).restype = None
                _libraries[source] = lib
            except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                _libraries[source] = None
                print(f"warning: the compiled kernels of {source.name} are unavailable ({type(exc).__name__}: "
                      f"{exc}); running the eager code (same results, slower)", file=sys.stderr)
        return _libraries[source]


def usable(*tensors: torch.Tensor) -> bool:
    """Whether a kernel can take these tensors: on the CPU and contiguous."""
    return all(t.device.type == "cpu" and t.is_contiguous() for t in tensors)


def ranges(n: int) -> list[tuple[int, int]]:
    """``[begin, end)`` per thread (``torch.get_num_threads()``), block-aligned."""
    blocks = (n + BLOCK - 1) // BLOCK
    threads = max(1, min(torch.get_num_threads(), blocks))
    per = -(-blocks // threads) * BLOCK
    return [(start, min(n, start + per)) for start in range(0, n, per)]


def run(call: Callable[[int, int], None], n: int) -> None:
    """``call(begin, end)`` over :func:`ranges` of ``n`` items, on that many threads (ctypes
    releases the GIL during a call)."""
    parts = ranges(n)
    if len(parts) == 1:
        call(*parts[0])
        return
    with _lock:
        if not _pool or _pool[0]._max_workers < len(parts):  # noqa: SLF001 - grown with the thread count
            _pool[:] = [ThreadPoolExecutor(len(parts), thread_name_prefix="lowspike-kernels")]
        pool = _pool[0]
    for future in [pool.submit(call, *part) for part in parts]:
        future.result()
