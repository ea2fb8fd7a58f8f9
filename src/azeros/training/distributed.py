"""Data parallelism for a model whose only trainable parts are small projectors.

Launched with ``torchrun --nproc_per_node N`` (or ``accelerate launch``), each process holds the frozen
model and draws its own share of every global batch. Only the projectors train, so after the micro-batches
of a step one all-reduce of their gradients (tens of millions of numbers, not billions) makes every
process take the same optimizer step.

That all-reduce is written here rather than left to ``DistributedDataParallel``, whose reducer all-reduces
inside every backward and so needs every process to run the same backwards over the same parameters. Here
processes run different numbers of micro-batches (each splits its share by a token budget), a micro-batch
whose items reach no trainable projector runs no backward at all (stage 2), and the projectors are called
inside ``SpeechLLM``, not through a wrapper: DDP would need ``no_sync``, ``join`` and
``find_unused_parameters`` for what one flat all-reduce after the local micro-batches does. DDP also
averages over processes, where the loss here is already scaled by the global batch's token count and the
gradients must be summed, and wrapping the model would broadcast the whole frozen model at construction.

When the frozen LLM does not fit one GPU, ``run.shard_llm`` shards its decoder layers over the processes
with FSDP2 (``fully_shard``): the LLM is built on the CPU (each process's host memory holds it whole until
then), each layer goes to the device one at a time and only this process's shard of it stays there; its
weights are gathered just before it runs and freed after. Every process must then run the LLM the same
number of times, forward and backward, so the loop evens out micro-batch counts across processes and
always runs the backward through the LLM.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from azeros.llm import resolve_device

__all__ = ["Distributed"]


@dataclass
class Distributed:
    """This process's place in the run.

    Attributes:
        rank: global rank (0 writes logs and checkpoints).
        world_size: number of processes.
        device: where this process computes.
    """

    rank: int
    world_size: int
    device: torch.device

    @classmethod
    def setup(cls, device: str = "auto") -> Distributed:
        """Join the process group that torchrun describes in the environment, if any.

        Args:
            device: ``auto`` (a GPU if there is one), ``cpu`` or ``cuda``.

        Raises:
            DeviceError: when ``cuda`` is asked for and torch cannot use a GPU here.
        """
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        kind = resolve_device(device).split(":")[0]
        target = torch.device(f"cuda:{local_rank}") if kind == "cuda" else torch.device("cpu")
        if kind == "cuda":
            torch.cuda.set_device(target)
        if world_size > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if kind == "cuda" else "gloo")
        return cls(rank, world_size, target)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over all processes (in place; returned for convenience)."""
        if self.world_size > 1:
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def max(self, value: int) -> int:
        """The largest ``value`` over all processes."""
        if self.world_size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.long)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return int(tensor.item())

    def shard_decoder_layers(self, llm: torch.nn.Module) -> int:
        """Shard each decoder layer of a frozen transformers LLM over the processes (FSDP2), onto ``device``.

        Call it while the LLM is still on the CPU: ``fully_shard`` moves one layer at a time to the device and
        keeps only this process's shard there, so the device never holds more than one whole layer. Move the
        rest of the model afterwards. Embeddings, final norm and LM head stay whole on every process: the
        model calls them directly, and they are a small part of a large LLM. Returns the number of sharded
        layers.
        """
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(self.device.type, (self.world_size,))
        layers = llm.get_decoder().layers
        for layer in layers:
            fully_shard(layer, mesh=mesh)
        return len(layers)

    def sum_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Sum the gradients of ``params`` over all processes, in one flat all-reduce."""
        if self.world_size == 1:
            return
        params = list(params)
        for p in params:  # a process whose micro-batches reached no trainable projector still joins the sum
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        grads = [p.grad for p in params]
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def broadcast(self, params: Iterable[torch.Tensor]) -> None:
        """Give every process rank 0's values."""
        if self.world_size > 1:
            for p in params:
                dist.broadcast(p.data, src=0)

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the block on the main process, then on the others: one process prepares what all share."""
        if not self.main:
            self.barrier()
        yield
        if self.main:
            self.barrier()

    def close(self) -> None:
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()
