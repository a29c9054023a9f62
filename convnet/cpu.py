"""What the CPU this runs on has: its model, the matrix units that make bfloat16 fast (AVX-512
BF16, AMX), and how many cores this process may use. The recipes pick their path from it, and
every benchmark prints it beside its figures (the machines here change from session to
session: an AMD EPYC with AVX-512 BF16, an Intel Xeon with AMX, an Intel Xeon with AVX-512 and no
bf16 at all, an AMD EPYC with AVX2 only). And which of OpenBLAS's kernels the NumPy engine
should multiply with where OpenBLAS's own choice is slower (blas_kernels), asked for as
convnet is imported, before NumPy loads OpenBLAS (prefer_blas_kernels).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, replace
from functools import lru_cache

BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # bf16 dot products in hardware
SHOWN_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


@dataclass(frozen=True)
class CPU:
    model: str
    flags: frozenset[str]
    cores: int  # the cores this process may run on
    vendor: str = ""  # /proc/cpuinfo's vendor_id: "AuthenticAMD", "GenuineIntel", …
    family: int = 0  # its "cpu family": 25 for AMD's Zen 3 and Zen 4

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


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str], str, int]:
    """The model name, the flags, the vendor and the family of /proc/cpuinfo's first
    processor."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = "flags" if key.strip() == "Features" else key.strip()  # (ARM's name for them)
        if key in ("model name", "flags", "vendor_id", "cpu family"):
            fields.setdefault(key, value.strip())
        elif not key and fields:  # the blank line after the first processor
            break
    family = fields.get("cpu family", "")
    return (fields.get("model name") or platform.processor() or platform.machine(),
            frozenset(fields.get("flags", "").split()), fields.get("vendor_id", ""),
            int(family) if family.isdigit() else 0)


def _read() -> CPU:
    """This machine's CPU as /proc/cpuinfo says, without CONVNET_CPU_FLAGS."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            model, flags, vendor, family = parse_cpuinfo(info.read())
    except OSError:
        model, flags, vendor, family = \
            platform.processor() or platform.machine(), frozenset(), "", 0
    return CPU(model, flags, _cores(), vendor, family)


@lru_cache(maxsize=1)
def this_cpu() -> CPU:
    """This machine's CPU (read once). CONVNET_CPU_FLAGS, if set, replaces the flags read —
    to see what a recipe does on a CPU without bf16 units: CONVNET_CPU_FLAGS=avx512f."""
    cpu = _read()
    override = os.environ.get("CONVNET_CPU_FLAGS")
    if override is not None:
        cpu = replace(cpu, flags=frozenset(override.replace(",", " ").split()))
    return cpu


def blas_kernels(cpu: CPU) -> str | None:
    """The kernels NumPy's OpenBLAS should multiply with on this CPU where its own choice is
    slower (an OPENBLAS_CORETYPE name), else None. On AMD's family 25 with AVX-512 (Zen 4,
    which runs AVX-512 on 256-bit halves) OpenBLAS picks its SkylakeX kernels, made for Intel's
    full-width AVX-512; its Haswell kernels (AVX2) multiplied 11 of the NumPy engine's 12
    product shapes 4–112% faster there (a one-channel layer's weight gradient 12% slower), and
    with them the engine's training steps took 1.0–1.18× less time (AMD EPYC Zen 4, 2 cores,
    2026-12-04: docs/BENCHMARKS.md, "The AMD EPYC Zen 4 again")."""
    if cpu.vendor == "AuthenticAMD" and cpu.family == 25 and "avx512f" in cpu.flags:
        return "Haswell"
    return None


def prefer_blas_kernels(cpu: CPU | None = None,
                        environ: MutableMapping[str, str] = os.environ,
                        loaded: Mapping[str, object] = sys.modules) -> str | None:
    """Asks OpenBLAS for blas_kernels(cpu) (this machine's, read without CONVNET_CPU_FLAGS):
    OpenBLAS reads OPENBLAS_CORETYPE once, when NumPy loads it, so this is done only before
    NumPy is imported (convnet/__init__.py calls it first), never over an OPENBLAS_CORETYPE the
    user set, and child processes inherit it. Returns the kernels asked for, or None."""
    if "numpy" in loaded or environ.get("OPENBLAS_CORETYPE", "").strip():
        return None
    chosen = blas_kernels(cpu if cpu is not None else _read())
    if chosen is not None:
        environ["OPENBLAS_CORETYPE"] = chosen
    return chosen


def describe() -> str:
    return this_cpu().describe()
