"""DistributedDataParallel training: 2 gloo processes on the CPU against one process.

The 2-process job is started with ``python -m torch.distributed.run`` on 127.0.0.1; it trains
a tiny DEQ for 2 epochs with a global batch of 8 and must end with the weights of a
single-process run with batch 8 (same seed, same data order); it then refuses to overwrite
the run on every rank, and resumes it for a third epoch, again matching one process.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from andersonn_lab.deq.checkpoint import read_checkpoint
from andersonn_lab.deq.classifier import DEQClassifier
from andersonn_lab.deq.distributed import RankShard, distributed_env, train_distributed
from andersonn_lab.deq.train import epoch_order, train

# Every sample takes exactly max_iter solver steps (the tolerance is never reached), so a
# sample's equilibrium does not depend on which other samples share its batch.
SOLVER = {"tol": 1e-12, "max_iter": 6}
SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    torch.set_num_threads(1)
    from torch.utils.data import TensorDataset
    from andersonn_lab.deq.classifier import DEQClassifier
    from andersonn_lab.deq.distributed import init_distributed, train_distributed

    out = sys.argv[1]
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(16, 3, 6, 6, generator=gen)
    labels = (images[:, :, :3].mean((1, 2, 3)) > images[:, :, 3:].mean((1, 2, 3))).long()
    data = TensorDataset(images, labels)
    env, device = init_distributed("cpu")
    torch.manual_seed(1 + env.rank)  # different initial weights: DDP must broadcast rank 0's
    solver = json.loads(sys.argv[2])

    def fresh():
        return DEQClassifier(3, 2, channels=4, hidden=4, groups=2, pool=2,
                             forward_solver=solver, backward_solver=solver)

    options = dict(batch_size=8, lr=1e-2, scheduler="none", device="cpu", seed=3,
                   run_dir=out + "/run", progress=False)
    model = fresh()
    train_distributed(model, data, data, epochs=2, **options)
    torch.save(model.state_dict(), f"{out}/weights_rank{env.rank}.pt")
    try:  # the run folder is taken: every rank must refuse, none may hang
        train_distributed(fresh(), data, data, epochs=2, **options)
    except FileExistsError:
        open(f"{out}/refused_rank{env.rank}", "w").close()
    resumed = fresh()
    result = train_distributed(resumed, data, data, epochs=3, resume=True, **options)
    assert result.resumed_from == 2, result.resumed_from
    torch.save(resumed.state_dict(), f"{out}/resumed_rank{env.rank}.pt")
    torch.distributed.destroy_process_group()
    """
)


def _data():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(16, 3, 6, 6, generator=gen)
    labels = (images[:, :, :3].mean((1, 2, 3)) > images[:, :, 3:].mean((1, 2, 3))).long()
    return TensorDataset(images, labels)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_rank_shards_cover_the_global_batches_of_the_single_process_order():
    base = TensorDataset(torch.arange(10))
    shards = [RankShard(base, 4, rank=r, world_size=2, seed=5, epoch=2) for r in (0, 1)]
    glob = epoch_order(10, 5, 2)
    seen = []
    for shard in shards:
        local = epoch_order(len(shard), 5, 2)
        seen.append([int(shard[i][0]) for i in local])
    # steps: [0:4], [4:8], last chunk of 2 split 1 + 1 (no padding needed)
    assert seen[0] == glob[0:2] + glob[4:6] + glob[8:9]
    assert seen[1] == glob[2:4] + glob[6:8] + glob[9:10]
    odd = [
        RankShard(TensorDataset(torch.arange(5)), 4, rank=r, world_size=2, seed=0) for r in (0, 1)
    ]
    assert len(odd[0]) == len(odd[1]) == 3  # the last chunk (1 sample) is padded to 2
    with pytest.raises(ValueError, match="divisible"):
        RankShard(base, 3, rank=0, world_size=2, seed=0)


def test_env_and_single_process_fallback():
    assert distributed_env({"RANK": "1", "WORLD_SIZE": "2"}).local_rank == 1
    with pytest.raises(ValueError):
        distributed_env({"RANK": "2", "WORLD_SIZE": "2"})
    torch.manual_seed(1)
    model = DEQClassifier(3, 2, channels=4, hidden=4, groups=2, pool=2)
    result = train_distributed(model, _data(), epochs=1, batch_size=8, device="cpu", progress=False)
    assert len(result.history) == 1


def test_two_gloo_processes_match_one_process(tmp_path: Path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        str(script),
        str(tmp_path),
        json.dumps(SOLVER),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    expected = {}
    for epochs in (2, 3):
        torch.manual_seed(1)
        single = DEQClassifier(
            3,
            2,
            channels=4,
            hidden=4,
            groups=2,
            pool=2,
            forward_solver=SOLVER,
            backward_solver=SOLVER,
        )
        train(
            single,
            _data(),
            _data(),
            epochs=epochs,
            batch_size=8,
            lr=1e-2,
            scheduler="none",
            device="cpu",
            seed=3,
            progress=False,
        )
        expected[epochs] = single.state_dict()
    for rank in (0, 1):
        assert (tmp_path / f"refused_rank{rank}").exists()
        for name, epochs in (("weights", 2), ("resumed", 3)):
            got = torch.load(tmp_path / f"{name}_rank{rank}.pt", weights_only=True)
            assert got.keys() == expected[epochs].keys()
            for key, value in expected[epochs].items():
                torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-6, msg=key)

    # Rank 0 alone wrote the run folder; its checkpoint holds plain (unprefixed) weights.
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    saved = read_checkpoint(run / "checkpoints" / "last.pt")
    assert set(saved["model"]) == set(expected[3])
    assert saved["model_config"]["channels"] == 4
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert [m["epoch"] for m in history] == [1, 2, 3]
    # Training metrics combine both ranks: the same samples, losses and accuracy as one process.
    torch.manual_seed(1)
    single = DEQClassifier(
        3, 2, channels=4, hidden=4, groups=2, pool=2, forward_solver=SOLVER, backward_solver=SOLVER
    )
    options = {"batch_size": 8, "lr": 1e-2, "scheduler": "none", "device": "cpu", "seed": 3}
    one = train(single, _data(), _data(), epochs=3, progress=False, **options).history
    for got, want in zip(history, one, strict=True):
        assert got["n_train"] == want["n_train"] == 16 and got["steps"] == 2
        assert got["train_acc"] == want["train_acc"]
        assert math.isclose(got["train_loss"], want["train_loss"], rel_tol=1e-5)
