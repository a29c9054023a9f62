"""What the machine can give: memory a process may still allocate, and the check that a network
fits before anything is allocated for it.

The need is the inspector's arithmetic (weights and activations, `shapes.infer`), so a network
that cannot fit is refused with the same figures `convnet inspect` shows, instead of a
MemoryError (or the kernel's OOM killer) halfway through.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UserError


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> int | None:
    """Bytes this process can still allocate (Linux: MemAvailable, capped by the cgroup's
    limit less its use, by ulimit -v less what is mapped and by ulimit -d less its data), or
    None where the system does not say. CONVNET_MEMORY (bytes)
    overrides, for tests and for users who want to keep a margin."""
    override = os.environ.get("CONVNET_MEMORY")
    if override:
        try:
            return int(override)
        except ValueError:
            raise UserError(f"CONVNET_MEMORY must be a number of bytes, got {override!r}") from None
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    for limit, field in (("RLIMIT_AS", "VmSize"), ("RLIMIT_DATA", "VmData")):
        left = _left_under(limit, field)  # ulimit -v, ulimit -d
        if left is not None:
            found.append(left)
    limit = _read_int("/sys/fs/cgroup/memory.max")  # cgroup v2 ("max" reads as None)
    used = _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        found.append(max(0, limit - used))
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    return min(found)


def _left_under(limit: str, field: str) -> int | None:
    """A resource limit (RLIMIT_AS: ulimit -v; RLIMIT_DATA: ulimit -d) less what this process
    already uses of it (/proc/self/status: VmSize; VmData), where such a limit is set."""
    try:
        import resource

        soft, _ = resource.getrlimit(getattr(resource, limit))
        if soft == resource.RLIM_INFINITY:
            return None
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return max(0, soft - int(line.split()[1]) * 1024)
    except (ImportError, AttributeError, OSError, ValueError, IndexError):
        pass
    return None


def bytes_text(n: int | float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def check_fits(need: int, what: str) -> None:
    """Refuse, before allocating, what needs more memory than the machine has available."""
    have = available_memory()
    if have is not None and need > have:
        raise UserError(f"{what} needs about {bytes_text(need)} of memory, and this machine has "
                        f"{bytes_text(have)} available; use a smaller network (convnet inspect "
                        "shows where the weights and activations are)")


# what the dynamic loader says when a shared library finds no memory to be mapped into
MAPPING_FAILED = ("cannot map zero-fill pages", "failed to map segment from shared object",
                  "Cannot allocate memory")


def out_of_memory(e: BaseException) -> bool:
    """NumPy's MemoryError, PyTorch's CPU allocator failing or CUDA running out, or a library
    imported late (matplotlib, for the plots) that the loader had no memory to map."""
    if isinstance(e, MemoryError):
        return True
    text = str(e)
    if isinstance(e, ImportError):
        return any(words in text for words in MAPPING_FAILED)
    return type(e).__name__ == "OutOfMemoryError" or (
        isinstance(e, RuntimeError) and ("not enough memory" in text or "out of memory" in text))
