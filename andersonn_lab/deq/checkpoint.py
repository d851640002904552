"""Training checkpoints: atomic writes, full validation before anything is loaded.

A checkpoint is a ``torch.save`` file holding plain containers and tensors only (it loads
with ``weights_only=True``): the model, optimiser, scheduler and gradient-scaler states,
the random-number-generator states (torch, numpy, python, CUDA), the metrics history and
the run configuration.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "FORMAT",
    "CheckpointError",
    "atomic_save",
    "atomic_write_json",
    "atomic_write_text",
    "capture_rng_state",
    "load_checkpoint",
    "read_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
]

FORMAT = "andersonn_lab.deq.checkpoint/1"
"""Format tag stored in (and required of) every checkpoint."""

_REQUIRED = {
    "format": str,
    "epoch": int,
    "model": dict,
    "rng": dict,
    "history": list,
    "config": dict,
}


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, corrupt or does not fit the model it is loaded into.

    The message names the file and what is wrong.

    Examples
    --------
    >>> raise CheckpointError("run/last.pt: not a checkpoint")
    Traceback (most recent call last):
    ...
    andersonn_lab.deq.checkpoint.CheckpointError: run/last.pt: not a checkpoint
    """


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _replace_atomically(path: Path, write: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; use the usual mode
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file next to ``path``, then ``os.replace`` it into place.

    A reader never sees a half-written file: either the old one or the complete new one.
    """
    _replace_atomically(Path(path), lambda handle: torch.save(obj, handle))


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write UTF-8 text to ``path`` atomically (temporary file + ``os.replace``)."""
    _replace_atomically(Path(path), lambda handle: handle.write(text.encode("utf-8")))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def atomic_write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as indented, strict JSON to ``path`` atomically (NaN/inf become null)."""
    atomic_write_text(json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n", path)


def capture_rng_state() -> dict[str, Any]:
    """The states of torch's, numpy's, python's and (if initialised) CUDA's generators.

    Everything is a tensor or plain number, so the result survives ``weights_only`` loading.

    Examples
    --------
    >>> state = capture_rng_state()
    >>> a = torch.rand(1); restore_rng_state(state); b = torch.rand(1)
    >>> bool(a == b)
    True
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - global state
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "internal": list(internal), "gauss": gauss},
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore generator states captured by :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(  # noqa: NPY002 - restoring the global state
        (
            np_state["kind"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def save_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module,
    epoch: int,
    history: list[dict[str, Any]],
    config: Mapping[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scaler: Any | None = None,
) -> Path:
    """Write a checkpoint atomically and return its path.

    Parameters
    ----------
    model:
        Its ``state_dict`` and, if it has one, its ``config`` (e.g.
        :attr:`~andersonn_lab.deq.classifier.DEQClassifier.config`) are stored.
    epoch:
        Number of completed epochs.
    history:
        Per-epoch metrics so far.
    config:
        Run configuration (JSON-like).
    optimizer, scheduler, scaler:
        Their ``state_dict`` is stored when given.
    """
    model_config = getattr(model, "config", None)
    payload = {
        "format": FORMAT,
        "epoch": int(epoch),
        "model": model.state_dict(),
        "model_config": dict(model_config) if isinstance(model_config, Mapping) else None,
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "scaler": None if scaler is None else scaler.state_dict(),
        "rng": capture_rng_state(),
        "history": list(history),
        "config": dict(config),
    }
    path = Path(path)
    atomic_save(payload, path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint and check its structure (not yet against any model).

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    CheckpointError
        If the file cannot be read, or lacks the format tag or a required entry.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any failure to unpickle means a bad file
        raise CheckpointError(
            f"{path}: not a readable checkpoint (corrupt or truncated?): "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: not a checkpoint (holds a {type(payload).__name__})")
    if payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: unsupported checkpoint format {payload.get('format')!r}; expected {FORMAT!r}"
        )
    for key, kind in _REQUIRED.items():
        if not isinstance(payload.get(key), kind):
            raise CheckpointError(f"{path}: entry {key!r} is missing or not a {kind.__name__}")
    for key in ("torch", "numpy", "python"):
        if key not in payload["rng"]:
            raise CheckpointError(f"{path}: random-generator state {key!r} is missing")
    return payload


def _check_model(path: Path, payload: Mapping[str, Any], model: torch.nn.Module) -> None:
    model_config = getattr(model, "config", None)
    saved_config = payload.get("model_config")
    if isinstance(model_config, Mapping) and isinstance(saved_config, Mapping):
        differ = sorted(
            key
            for key in set(model_config) | set(saved_config)
            if model_config.get(key) != saved_config.get(key)
        )
        # Solver settings may change between runs (a dashboard may switch them); the
        # architecture may not.
        arch = [k for k in differ if k not in ("forward_solver", "backward_solver")]
        arch = [k for k in arch if not k.startswith(("phantom", "gradient"))]
        if arch:
            details = ", ".join(
                f"{k}: checkpoint {saved_config.get(k)!r} vs model {model_config.get(k)!r}"
                for k in arch
            )
            raise CheckpointError(f"{path}: model architecture differs ({details})")
    expected = model.state_dict()
    saved = payload["model"]
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: model weights do not match the model (missing: {missing[:5]}, "
            f"unexpected: {unexpected[:5]})"
        )
    for key, value in saved.items():
        want = expected[key]
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: model entry {key!r} is not a tensor")
        if value.shape != want.shape:
            raise CheckpointError(
                f"{path}: model entry {key!r} has shape {tuple(value.shape)}, "
                f"the model expects {tuple(want.shape)}"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{path}: model entry {key!r} holds NaN or infinite values")


def _check_optimizer(path: Path, saved: Any, optimizer: torch.optim.Optimizer) -> None:
    if not isinstance(saved, dict) or "param_groups" not in saved or "state" not in saved:
        raise CheckpointError(f"{path}: optimizer state is missing or malformed")
    groups = optimizer.param_groups
    if len(saved["param_groups"]) != len(groups):
        raise CheckpointError(
            f"{path}: optimizer has {len(saved['param_groups'])} parameter groups in the "
            f"checkpoint, {len(groups)} now"
        )
    shapes: dict[Any, torch.Size] = {}
    for saved_group, group in zip(saved["param_groups"], groups, strict=True):
        if len(saved_group.get("params", [])) != len(group["params"]):
            raise CheckpointError(f"{path}: optimizer parameter counts differ from the model's")
        for index, param in zip(saved_group["params"], group["params"], strict=True):
            shapes[index] = param.shape
    for index, entry in saved["state"].items():
        if index not in shapes:
            raise CheckpointError(f"{path}: optimizer state for unknown parameter {index!r}")
        for name, value in entry.items():
            if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape != shapes[index]:
                raise CheckpointError(
                    f"{path}: optimizer state {name!r} of parameter {index} has shape "
                    f"{tuple(value.shape)}, expected {tuple(shapes[index])}"
                )


def load_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scaler: Any | None = None,
    restore_rng: bool = False,
) -> dict[str, Any]:
    """Validate a checkpoint against ``model`` (and optimiser...) and only then load it.

    Everything is checked first: format, required entries, model architecture, weight names
    and shapes, finite weights, optimiser groups and state shapes, presence of the scheduler
    and scaler states. If a ``load_state_dict`` still fails, what was already loaded is rolled
    back, so the objects are never left half-loaded.

    Returns
    -------
    dict
        The checkpoint contents (``epoch``, ``history``, ``config``, ...).

    Raises
    ------
    CheckpointError
        Naming the file and the problem.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> model = torch.nn.Linear(2, 1)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "last.pt"
    >>> _ = save_checkpoint(path, model=model, epoch=3, history=[], config={})
    >>> load_checkpoint(path, torch.nn.Linear(2, 1))["epoch"]
    3
    >>> load_checkpoint(path, torch.nn.Linear(3, 1))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    andersonn_lab.deq.checkpoint.CheckpointError: ...last.pt: model entry 'weight' has shape ...
    """
    path = Path(path)
    payload = read_checkpoint(path)
    _check_model(path, payload, model)
    if optimizer is not None:
        _check_optimizer(path, payload.get("optimizer"), optimizer)
    for name, obj in (("scheduler", scheduler), ("scaler", scaler)):
        if obj is not None and not isinstance(payload.get(name), dict):
            raise CheckpointError(f"{path}: {name} state is missing")
    backups = [(model, copy.deepcopy(model.state_dict()))]
    targets: list[tuple[Any, Any]] = [(model, payload["model"])]
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if obj is not None:
            backups.append((obj, copy.deepcopy(obj.state_dict())))
            targets.append((obj, payload[name]))
    done = 0
    try:
        for obj, state in targets:
            done += 1
            obj.load_state_dict(state)
    except Exception as err:  # roll back whatever was (partly) loaded, then report
        for obj, state in backups[:done]:
            obj.load_state_dict(state)
        raise CheckpointError(f"{path}: could not be loaded: {err}") from None
    if restore_rng:
        try:
            restore_rng_state(payload["rng"])
        except Exception as err:
            for obj, state in backups:
                obj.load_state_dict(state)
            raise CheckpointError(f"{path}: bad random-generator state: {err}") from None
    return payload
