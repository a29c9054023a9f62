"""What the CPU this runs on has: its model, the matrix units that make bfloat16 fast (AVX-512
BF16, AMX), and how many cores this process may use. The recipes pick their path from it, and
every benchmark prints it beside its figures (the machines here change from session to
session: an AMD EPYC with AVX-512 BF16, an Intel Xeon with AMX, an Intel Xeon with AVX-512 and no
bf16 at all).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import lru_cache

BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # bf16 dot products in hardware
SHOWN_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


@dataclass(frozen=True)
class CPU:
    model: str
    flags: frozenset[str]
    cores: int  # the cores this process may run on

    @property
    def bf16(self) -> bool:
        """Whether bfloat16 matrix work runs on dedicated units (faster than float32)."""
        return any(flag in self.flags for flag in BF16_FLAGS)

    @property
    def amx(self) -> bool:
        return "amx_bf16" in self.flags

    def describe(self) -> str:
        """e.g. 'AMD EPYC 9R14, 2 cores, avx512f avx512_bf16 (bf16 units)'."""
        shown = " ".join(flag for flag in SHOWN_FLAGS if flag in self.flags) or "no AVX"
        units = "AMX bf16 units" if self.amx else "bf16 units" if self.bf16 else "no bf16 units"
        return f"{self.model}, {self.cores} cores, {shown} ({units})"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """The model name and the flags of /proc/cpuinfo's first processor."""
    model, flags = "", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
        if model and flags:
            break
    return model or platform.processor() or platform.machine(), flags


@lru_cache(maxsize=1)
def this_cpu() -> CPU:
    """This machine's CPU (read once). CONVNET_CPU_FLAGS, if set, replaces the flags read —
    to see what a recipe does on a CPU without bf16 units: CONVNET_CPU_FLAGS=avx512f."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            model, flags = parse_cpuinfo(info.read())
    except OSError:
        model, flags = platform.processor() or platform.machine(), frozenset()
    override = os.environ.get("CONVNET_CPU_FLAGS")
    if override is not None:
        flags = frozenset(override.replace(",", " ").split())
    return CPU(model, flags, _cores())


def describe() -> str:
    return this_cpu().describe()
