"""Multi-process (multi-GPU) training with PyTorch's DistributedDataParallel under ``torchrun``.

Nothing here distributes by hand: gradients are averaged by
:class:`torch.nn.parallel.DistributedDataParallel` (NCCL on CUDA, gloo on the CPU), and the
processes are started by ``torchrun``, which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``. :func:`train_distributed` composes the single-process
:func:`~andersonn_lab.deq.train.train`:

* the model is wrapped in :class:`EquilibriumDDP` (DDP that saves and loads the plain
  model's weights and exposes its ``config``, so checkpoints stay loadable by ``predict``);
* each process sees a :class:`RankShard` of the training set: every optimiser step, the
  global batch of ``batch_size`` samples that a single-process run would take (same seed,
  same order) is cut into ``world_size`` equal slices, one per process. With ``batch_size``
  and the training-set size divisible by ``world_size`` the run reproduces a single-process
  run with the same global batch (up to floating-point reduction order);
* rank 0 alone writes the run folder (``config.json``, ``metrics.json``, checkpoints); the
  other ranks keep their resumable state in a private temporary folder that is deleted at
  the end.

Run on 4 GPUs of one machine (the options are those of ``andersonn-lab train``;
``--batch-size`` is the global batch)::

    torchrun --nproc_per_node=4 -m andersonn_lab.deq.distributed \\
        --task mofs --epochs 10 --batch-size 128 --run-dir runs/mofs-ddp

On the CPU (gloo), e.g. to check a setup: add ``--device cpu``. Without ``torchrun`` (no
``WORLD_SIZE`` in the environment) the same command trains in one process.

Notes
-----
``train_loss`` / ``train_acc`` and the solver statistics of the training part of each
epoch in ``metrics.json`` are those of rank 0's slices (``n_train`` is rank 0's sample
count); validation metrics are computed on the whole validation set. When the last global
batch cannot be cut evenly, it is padded with samples from the start of that epoch's order
(as :class:`torch.utils.data.DistributedSampler` does), so those samples count twice.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from .train import TrainConfig, TrainResult, epoch_order, resolve_device, train

__all__ = [
    "DistributedEnv",
    "EquilibriumDDP",
    "RankShard",
    "distributed_env",
    "init_distributed",
    "train_distributed",
]


@dataclass(frozen=True)
class DistributedEnv:
    """Where this process sits in a ``torchrun`` job.

    Attributes
    ----------
    rank, world_size, local_rank:
        From the ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` environment variables
        (0, 1, 0 outside ``torchrun``).

    Examples
    --------
    >>> DistributedEnv(0, 1, 0).is_distributed
    False
    """

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_distributed(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that writes files and prints."""
        return self.rank == 0


def distributed_env(environ: Mapping[str, str] | None = None) -> DistributedEnv:
    """Read ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (as set by ``torchrun``).

    Examples
    --------
    >>> distributed_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    DistributedEnv(rank=1, world_size=2, local_rank=1)
    >>> distributed_env({})
    DistributedEnv(rank=0, world_size=1, local_rank=0)
    """
    environ = os.environ if environ is None else environ
    env = DistributedEnv(
        rank=int(environ.get("RANK", "0")),
        world_size=int(environ.get("WORLD_SIZE", "1")),
        local_rank=int(environ.get("LOCAL_RANK", environ.get("RANK", "0"))),
    )
    if env.world_size < 1 or not 0 <= env.rank < env.world_size:
        raise ValueError(f"inconsistent RANK/WORLD_SIZE: {env}")
    return env


def init_distributed(
    device: str | torch.device = "auto", backend: str | None = None
) -> tuple[DistributedEnv, torch.device]:
    """Join the ``torchrun`` process group (if there is one) and pick this rank's device.

    ``device="auto"`` gives ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU; the
    backend defaults to NCCL on CUDA and gloo on the CPU. Outside ``torchrun`` nothing is
    initialised. Call :func:`torch.distributed.destroy_process_group` when done.

    Examples
    --------
    >>> init_distributed("cpu")  # outside torchrun: a single process
    (DistributedEnv(rank=0, world_size=1, local_rank=0), device(type='cpu'))
    """
    env = distributed_env()
    resolved = resolve_device(device)
    if resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device("cuda", env.local_rank % max(torch.cuda.device_count(), 1))
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    if env.is_distributed and not dist.is_initialized():
        backend = backend or ("nccl" if resolved.type == "cuda" else "gloo")
        dist.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size)
    return env, resolved


class EquilibriumDDP(DistributedDataParallel):
    """DistributedDataParallel whose ``state_dict``/``load_state_dict`` are the wrapped
    model's (no ``module.`` prefix) and which exposes the wrapped model's ``config``.

    Checkpoints written through it are therefore the same as single-process ones.

    Examples
    --------
    >>> EquilibriumDDP.__mro__[1].__name__
    'DistributedDataParallel'
    """

    @property
    def config(self) -> Any:
        """The wrapped model's ``config`` (None if it has none)."""
        return getattr(self.module, "config", None)

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ):
        return self.module.load_state_dict(state_dict, strict=strict, assign=assign)


class RankShard(Dataset):
    """This rank's share of every global batch of a seeded epoch order.

    :func:`~andersonn_lab.deq.train.train` visits its dataset in the order
    ``epoch_order(len(dataset), seed, epoch)`` in batches of the per-rank size. A
    ``RankShard`` arranges its items so that this order yields, at step ``k``, slice
    ``rank`` of global batch ``k`` of the single-process order
    ``epoch_order(len(base), seed, epoch)``. Set :attr:`epoch` before each epoch (an
    epoch-end callback of :class:`_EpochFollower` does it).

    Parameters
    ----------
    base:
        The whole training set.
    batch_size:
        The global batch; must be divisible by ``world_size``.
    rank, world_size:
        This process and the number of processes.
    seed:
        The training seed.
    epoch:
        The first epoch that will run (1 for a fresh run).

    Examples
    --------
    >>> from torch.utils.data import TensorDataset
    >>> base = TensorDataset(torch.arange(8))
    >>> shards = [RankShard(base, 4, rank=r, world_size=2, seed=0) for r in (0, 1)]
    >>> len(shards[0]), sorted(int(s[i][0]) for s in shards for i in range(len(s)))
    (4, [0, 1, 2, 3, 4, 5, 6, 7])
    """

    def __init__(
        self,
        base: Dataset,
        batch_size: int,
        *,
        rank: int,
        world_size: int,
        seed: int,
        epoch: int = 1,
    ) -> None:
        if batch_size % world_size:
            raise ValueError(
                f"the global batch size ({batch_size}) must be divisible by the number of "
                f"processes ({world_size})"
            )
        self.base, self.batch_size, self.rank, self.world_size = base, batch_size, rank, world_size
        self.seed = seed
        n = len(base)
        if n == 0:
            raise ValueError("the training set is empty")
        self.n_base = n
        self.local_batch = batch_size // world_size
        self.steps = math.ceil(n / batch_size)
        self.last_global = n - (self.steps - 1) * batch_size
        self.last_local = math.ceil(self.last_global / world_size)
        self.padding = self.last_local * world_size - self.last_global
        self._length = (self.steps - 1) * self.local_batch + self.last_local
        self._map: list[int] = []
        self._epoch = -1
        self.epoch = epoch

    @property
    def epoch(self) -> int:
        """The epoch whose order the shard currently follows."""
        return self._epoch

    @epoch.setter
    def epoch(self, epoch: int) -> None:
        if epoch == self._epoch:
            return
        glob = epoch_order(self.n_base, self.seed, epoch)
        local = epoch_order(self._length, self.seed, epoch)
        full = (self.steps - 1) * self.local_batch
        tail = glob[(self.steps - 1) * self.batch_size :] + glob[: self.padding]
        mapping = [0] * self._length
        for j, slot in enumerate(local):
            if j < full:
                step, offset = divmod(j, self.local_batch)
                mapping[slot] = glob[step * self.batch_size + self.rank * self.local_batch + offset]
            else:
                mapping[slot] = tail[self.rank * self.last_local + j - full]
        self._map, self._epoch = mapping, epoch

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> Any:
        return self.base[self._map[index]]


class _EpochFollower:
    """Epoch-end callback moving a :class:`RankShard` on to the next epoch's order."""

    def __init__(self, shard: RankShard) -> None:
        self.shard = shard

    def on_epoch_end(self, metrics: Mapping[str, Any]) -> None:
        self.shard.epoch = int(metrics["epoch"]) + 1


def _completed_epochs(path: Path) -> int:
    from .checkpoint import read_checkpoint

    return int(read_checkpoint(path)["epoch"])


def train_distributed(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None = None,
    train_config: TrainConfig | None = None,
    *,
    callbacks: Sequence[Any] = (),
    config: Mapping[str, Any] | None = None,
    find_unused_parameters: bool = False,
    **options: Any,
) -> TrainResult:
    """:func:`~andersonn_lab.deq.train.train` across the processes of a ``torchrun`` job.

    Call it in every process (after :func:`init_distributed`, or let it initialise the
    process group itself); outside ``torchrun`` it is plain :func:`train`.

    Parameters
    ----------
    model:
        The same architecture in every process; rank 0's initial weights are broadcast.
    train_set, val_set:
        The whole sets (each rank trains on its slices of every global batch; every rank
        evaluates the whole validation set).
    train_config:
        A :class:`~andersonn_lab.deq.train.TrainConfig`, as in :func:`train`, except:
        ``batch_size`` is the global batch (divisible by the number of processes);
        ``device="auto"`` means ``cuda:LOCAL_RANK`` if CUDA is available, else the CPU;
        the progress bar is shown by rank 0 only, and only rank 0 writes ``run_dir``.
    callbacks, config:
        As in :func:`train`.
    find_unused_parameters:
        Passed to DistributedDataParallel.
    **options:
        Fields of :class:`~andersonn_lab.deq.train.TrainConfig` (``epochs``, ``lr``,
        ``batch_size``...), replacing those of ``train_config``.

    Returns
    -------
    TrainResult
        On rank 0 the run's result; on other ranks ``run_dir`` and the checkpoint paths are
        None (their history is their own shard's).

    Examples
    --------
    >>> from torch.utils.data import TensorDataset
    >>> from andersonn_lab.deq.classifier import DEQClassifier
    >>> model = DEQClassifier(3, 2, channels=4, hidden=4, groups=2, pool=1)
    >>> data = TensorDataset(torch.rand(8, 3, 4, 4), torch.tensor([0, 1] * 4))
    >>> result = train_distributed(model, data, epochs=1, batch_size=4, device="cpu",
    ...                            progress=False)
    >>> len(result.history)
    1
    """
    cfg = train_config if train_config is not None else TrainConfig()
    if options:
        cfg = replace(cfg, **options)
    env, resolved = init_distributed(cfg.device)
    if not env.is_distributed:
        cfg = replace(cfg, device=resolved)
        return train(model, train_set, val_set, cfg, callbacks=callbacks, config=config)
    run_path = Path(cfg.run_dir) if cfg.run_dir is not None else None
    last = None if run_path is None else run_path / "checkpoints" / "last.pt"
    start_epoch, occupied = 0, 0
    if env.is_main and last is not None and last.exists():
        if cfg.resume:
            start_epoch = _completed_epochs(last)
        else:
            occupied = 1
    # Every rank must agree on where training starts (and whether it can) before the
    # first collective operation of DDP; rank 0 alone looks at the run folder.
    agreed = torch.tensor([start_epoch, occupied], dtype=torch.long, device=resolved)
    dist.broadcast(agreed, src=0)
    start_epoch, occupied = int(agreed[0]), int(agreed[1])
    if occupied:
        raise FileExistsError(
            f"{run_path} already holds a checkpoint ({last}); pass resume=True to continue "
            "that run, or choose another run_dir"
        )
    shard = RankShard(
        train_set,
        cfg.batch_size,
        rank=env.rank,
        world_size=env.world_size,
        seed=cfg.seed,
        epoch=start_epoch + 1,
    )
    model.to(resolved)
    wrapped = EquilibriumDDP(
        model,
        device_ids=[resolved.index] if resolved.type == "cuda" else None,
        find_unused_parameters=find_unused_parameters,
    )
    scratch: Path | None = None
    if env.is_main:
        rank_dir = run_path
    elif run_path is not None:
        # Other ranks keep their own resumable state (optimiser moments are identical to
        # rank 0's) in a private folder, so that the run folder has a single writer.
        scratch = Path(tempfile.mkdtemp(prefix=f"andersonn_ddp_rank{env.rank}_"))
        rank_dir = scratch / "run"
        if start_epoch:
            (rank_dir / "checkpoints").mkdir(parents=True)
            shutil.copyfile(last, rank_dir / "checkpoints" / "last.pt")
    else:
        rank_dir = None
    try:
        rank_config = replace(
            cfg,
            batch_size=cfg.batch_size // env.world_size,
            device=resolved,
            run_dir=rank_dir,
            progress=cfg.progress and env.is_main,
        )
        result = train(
            wrapped,
            shard,
            val_set,
            rank_config,
            callbacks=[_EpochFollower(shard), *callbacks],
            config=config,
        )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if not env.is_main:
        result.run_dir = result.last_checkpoint = result.best_checkpoint = None
    dist.barrier()
    return result


if __name__ == "__main__":
    # ``torchrun -m andersonn_lab.deq.distributed``: the train command (its entry point
    # lives with the other command-line handlers, which import this module).
    from andersonn_lab.deq.cli import distributed_main

    raise SystemExit(distributed_main())
