"""Training on many processes and machines with PyTorch's DistributedDataParallel.

    torchrun --nproc-per-node 2 -m convnet train --engine torch ...              # one machine
    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d \\
             --rdzv-endpoint HOST:29500 -m convnet train --engine torch ...       # several

torchrun sets RANK, WORLD_SIZE and the rendezvous in the environment; convnet joins the process
group from there (gloo on CPU, NCCL on CUDA). Each step's global batch (--batch-size) is split
evenly between the ranks, and DDP averages their gradients, so the step equals the single-process
step on the whole batch. Every rank reads the data and can resume; rank 0 alone writes the run
directory and prints.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

from .errors import UserError, first_line

TIMEOUT = datetime.timedelta(seconds=int(os.environ.get("CONVNET_DIST_TIMEOUT", "300")))


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def world() -> World:
    """This process's place, from torchrun's environment (a single process without it)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError:
        given = (os.environ.get("WORLD_SIZE"), os.environ.get("RANK"))
        raise UserError(f"WORLD_SIZE and RANK must be whole numbers, not {given[0]!r} and "
                        f"{given[1]!r}") from None
    if size < 1 or not 0 <= rank < size:
        raise UserError(f"RANK {rank} is not a place in a world of WORLD_SIZE {size}")
    return World(rank, size)


def join(engine: str, device: str | None, batch_size: int) -> World:
    """Join the process group when started by torchrun; refuse what can't work."""
    here = world()
    if here.size == 1:
        return here
    if engine not in ("torch", "auto"):
        raise UserError("training on several processes needs --engine torch (DDP)")
    if batch_size % here.size:
        raise UserError(f"--batch-size {batch_size} does not split evenly between "
                        f"{here.size} processes; use a multiple of {here.size}")
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if (device or "").startswith("cuda") else "gloo"
        try:
            dist.init_process_group(backend, timeout=TIMEOUT)
        except (ValueError, RuntimeError, TimeoutError) as failure:
            # torchrun sets MASTER_ADDR/PORT; a hand-set WORLD_SIZE without them, or a master
            # nobody answers at, fails here. DistStoreError is a RuntimeError.
            raise UserError(f"cannot join the {here.size}-process group as rank {here.rank} "
                            f"(MASTER_ADDR={os.environ.get('MASTER_ADDR', 'unset')}, "
                            f"MASTER_PORT={os.environ.get('MASTER_PORT', 'unset')}): "
                            f"{first_line(failure)}") from None
    return here


def shard(index, here: World):
    """This rank's share of a step's global batch of indices."""
    return index[here.rank::here.size] if here.size > 1 else index
