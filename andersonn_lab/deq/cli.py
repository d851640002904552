"""``andersonn-lab train`` and ``andersonn-lab predict``: argument definitions and handlers.

The main command line (:mod:`andersonn_lab.cli`) wires these in::

    andersonn-lab train --task drugs --solver anderson --m 5 --epochs 10 --run-dir runs/drugs
    andersonn-lab predict --run-dir runs/drugs "CCO" molecule.sdf

A run folder holds ``config.json`` (training, model and image settings: the encoding and
image size that ``predict`` must reproduce), ``checkpoints/last.pt`` and ``best.pt``,
``metrics.json`` (per-epoch history and the final test-set scores) and ``training.png``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from andersonn_lab.structures.images import CHANNELS

from .checkpoint import CheckpointError, atomic_write_json, load_checkpoint
from .classifier import CELLS, INITS, DEQClassifier
from .gradients import GRADIENTS
from .train import (
    SCHEDULERS,
    NonFiniteLossError,
    evaluate,
    plot_history,
    predict,
    resolve_device,
    train,
)

__all__ = ["add_predict_arguments", "add_train_arguments", "run_predict", "run_train"]

TASK_CHOICES = ("drugs", "mofs", "crystals")
SOLVER_CHOICES = ("anderson", "forward")
ENCODINGS = tuple(CHANNELS)
_MOLECULE_SUFFIXES = {".smi", ".smiles", ".sdf", ".sd", ".mol"}
_FILE_SUFFIXES = _MOLECULE_SUFFIXES | {".cif", ".xyz", ".extxyz", ".vasp"}


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``andersonn-lab train`` to ``parser``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> add_train_arguments(parser)
    >>> args = parser.parse_args(["--task", "drugs", "--run-dir", "runs/x", "--m", "3"])
    >>> args.solver, args.m, args.epochs
    ('anderson', 3, None)

    Options left out (None) take the task's default recipe
    (:func:`~andersonn_lab.deq.recipe.default_recipe`), see :func:`apply_recipe`.
    """
    data = parser.add_argument_group("data")
    data.add_argument("--task", required=True, choices=TASK_CHOICES, help="classification task")
    data.add_argument(
        "--encoding", default=None, choices=ENCODINGS, help="image encoding (default: recipe's)"
    )
    data.add_argument("--image-size", type=int, default=None, help="image rows/columns (atoms)")
    data.add_argument("--split-seed", type=int, default=0, help="seed of the train/val/test split")
    data.add_argument("--data-dir", default=None, help="task data folder (default: bundled)")
    data.add_argument("--cache-dir", default=None, help="image cache folder")

    solver = parser.add_argument_group("fixed-point solvers")
    solver.add_argument("--solver", default="anderson", choices=SOLVER_CHOICES)
    solver.add_argument("--m", type=int, default=None, help="Anderson window")
    solver.add_argument("--beta", type=float, default=None, help="mixing / damping in (0, 2]")
    solver.add_argument("--tol", type=float, default=None, help="forward relative tolerance")
    solver.add_argument("--max-iter", type=int, default=None, help="forward solver steps at most")
    solver.add_argument(
        "--backward-solver", default=None, choices=SOLVER_CHOICES, help="default: --solver"
    )
    solver.add_argument("--backward-tol", type=float, default=None)
    solver.add_argument("--backward-max-iter", type=int, default=None)
    solver.add_argument("--gradient", default="implicit", choices=GRADIENTS)
    solver.add_argument("--phantom-steps", type=int, default=5)
    solver.add_argument("--phantom-damping", type=float, default=0.8)

    model = parser.add_argument_group("model")
    model.add_argument("--cell", default=None, choices=CELLS, help="the DEQ's cell")
    model.add_argument(
        "--contraction", type=float, default=None, help="Lipschitz bound (contractive cell)"
    )
    model.add_argument("--skip", type=float, default=None, help="identity weight (contractive)")
    model.add_argument("--channels", type=int, default=None)
    model.add_argument("--hidden", type=int, default=None)
    model.add_argument("--groups", type=int, default=None)
    model.add_argument("--weight-std", type=float, default=None)
    model.add_argument(
        "--weight-norm", action="store_true", default=None, help="weight-normalise the cell"
    )
    model.add_argument("--init", default=None, choices=INITS, help="initial state")
    model.add_argument("--pool", type=int, default=None, help="pooled map side before the head")

    run = parser.add_argument_group("training")
    run.add_argument("--run-dir", required=True, help="folder for config, checkpoints, metrics")
    run.add_argument("--epochs", type=int, default=None)
    run.add_argument("--batch-size", type=int, default=None)
    run.add_argument("--lr", type=float, default=None)
    run.add_argument("--weight-decay", type=float, default=None)
    run.add_argument("--scheduler", default=None, choices=SCHEDULERS)
    run.add_argument("--grad-clip", type=float, default=None)
    run.add_argument(
        "--jacobian-penalty", type=float, default=None, help="weight of ‖J_f‖_F² in the loss"
    )
    run.add_argument(
        "--smoke", action="store_true", help="the recipe's tiny setting (subsets, few epochs)"
    )
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    run.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--num-workers", type=int, default=0)


_RECIPE_MODEL_ARGS = (
    "cell",
    "contraction",
    "skip",
    "channels",
    "hidden",
    "groups",
    "weight_std",
    "weight_norm",
    "init",
    "pool",
)
_RECIPE_TRAIN_ARGS = (
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "scheduler",
    "grad_clip",
    "jacobian_penalty",
)


def apply_recipe(args: argparse.Namespace) -> Any:
    """Fill the options left as None from the task's default recipe; return that recipe.

    The recipe is :func:`~andersonn_lab.deq.recipe.default_recipe` (its smoke setting with
    ``--smoke``), so ``andersonn-lab train --task T --run-dir D`` trains the recipe whose
    accuracy the README reports.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> add_train_arguments(parser)
    >>> args = parser.parse_args(["--task", "crystals", "--run-dir", "x", "--epochs", "2"])
    >>> recipe = apply_recipe(args)
    >>> args.epochs, args.lr == recipe.training["lr"], args.tol == recipe.forward_solver["tol"]
    (2, True, True)
    """
    from .recipe import default_recipe

    recipe = default_recipe(args.task, smoke=bool(getattr(args, "smoke", False)))
    if args.encoding is None:
        args.encoding = recipe.encoding
    if args.image_size is None:
        args.image_size = recipe.image_size
    for name in _RECIPE_MODEL_ARGS:
        if getattr(args, name) is None:
            setattr(args, name, recipe.model[name])
    for name in _RECIPE_TRAIN_ARGS:
        if getattr(args, name) is None:
            setattr(args, name, recipe.training[name])
    forward, backward = recipe.forward_solver, recipe.backward_solver
    for name, settings, key in (
        ("beta", forward, "beta"),
        ("tol", forward, "tol"),
        ("max_iter", forward, "max_iter"),
        ("backward_tol", backward, "tol"),
        ("backward_max_iter", backward, "max_iter"),
    ):
        if getattr(args, name) is None:
            setattr(args, name, settings[key])
    if args.m is None and args.solver == "anderson":
        args.m = forward.get("m")
    return recipe


def _solver_settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    forward: dict[str, Any] = {
        "method": args.solver,
        "beta": args.beta,
        "tol": args.tol,
        "max_iter": args.max_iter,
    }
    backward_method = args.backward_solver or args.solver
    backward: dict[str, Any] = {
        "method": backward_method,
        "tol": args.backward_tol,
        "max_iter": args.backward_max_iter,
    }
    if args.m is not None:
        if args.solver != "anderson":
            raise ValueError("--m applies to --solver anderson only")
        forward["m"] = args.m
        if backward_method == "anderson":
            backward["m"] = args.m
    return forward, backward


def _fail(command: str, message: Any, code: int = 2) -> int:
    print(f"andersonn-lab {command}: {message}", file=sys.stderr)
    return code


def run_train(args: argparse.Namespace) -> int:
    """Train a DEQ classifier on a task and write the run folder; return the exit status.

    Under ``torchrun`` (``RANK`` and ``WORLD_SIZE`` set) it trains with
    DistributedDataParallel: ``--batch-size`` is then the global batch, and rank 0 alone
    evaluates, writes the run folder and prints.

    Exit status: 0 on success, 1 if training stopped on a NaN loss, 2 for bad arguments,
    missing data or an unusable checkpoint.
    """
    from andersonn_lab.datasets import load_task
    from andersonn_lab.structures.images import GLOBAL_CHANNELS

    from .distributed import distributed_env, init_distributed, train_distributed

    env, device, fit = distributed_env(), args.device, train
    if env.is_distributed:
        env, device = init_distributed(args.device)
        fit = train_distributed
    who = f"train (rank {env.rank})" if env.is_distributed else "train"
    try:
        recipe = apply_recipe(args)
        forward_solver, backward_solver = _solver_settings(args)
        options = {"graph_options": dict(recipe.graph_options)} if recipe.graph_options else {}
        task = load_task(
            args.task,
            encoding=args.encoding,
            image_size=args.image_size,
            split_seed=args.split_seed,
            data_dir=args.data_dir,
            cache_dir=args.cache_dir,
            **options,
        )
        train_set, val_set, test_set = recipe.splits(task)
        image, _ = task[0]
        torch.manual_seed(args.seed)
        model = DEQClassifier(
            int(image.shape[0]),
            len(task.class_names),
            channels=args.channels,
            hidden=args.hidden,
            groups=args.groups,
            weight_std=args.weight_std,
            weight_norm=args.weight_norm,
            cell=args.cell,
            contraction=args.contraction,
            skip=args.skip,
            init=args.init,
            pool=args.pool,
            global_channels=GLOBAL_CHANNELS[args.encoding],
            forward_solver=forward_solver,
            backward_solver=backward_solver,
            gradient=args.gradient,
            phantom_steps=args.phantom_steps,
            phantom_damping=args.phantom_damping,
        )
    except (ValueError, FileNotFoundError) as err:
        return _fail(who, err)
    config = {
        "task": args.task,
        "encoding": args.encoding,
        "image_size": args.image_size,
        "split_seed": args.split_seed,
        "class_names": list(task.class_names),
        "graph_options": dict(getattr(task, "graph_options", {}) or {}),
        "sizes": {"train": len(train_set), "val": len(val_set), "test": len(test_set)},
        "smoke": bool(args.smoke),
    }
    if env.is_distributed:
        config["distributed"] = {"world_size": env.world_size, "global_batch_size": args.batch_size}
    run_dir = Path(args.run_dir)
    try:
        result = fit(
            model,
            train_set,
            val_set,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            weight_decay=args.weight_decay,
            scheduler=args.scheduler,
            grad_clip=args.grad_clip,
            jacobian_penalty=args.jacobian_penalty,
            device=device,
            amp=args.amp,
            seed=args.seed,
            run_dir=run_dir,
            resume=args.resume,
            progress=not args.no_progress,
            config=config,
            num_workers=args.num_workers,
        )
    except NonFiniteLossError as err:
        return _fail(who, err, code=1)
    except (CheckpointError, FileExistsError, ValueError) as err:
        return _fail(who, err)
    if not env.is_main:
        return 0
    test = evaluate(model, test_set, batch_size=args.batch_size) if len(test_set) else {}
    atomic_write_json({"history": result.history, "test": test}, run_dir / "metrics.json")
    if result.history:
        plot_history(result.history, run_dir / "training.png")
    last = result.history[-1] if result.history else {}
    where = f" on {env.world_size} processes" if env.is_distributed else ""
    print(
        f"trained {args.task} for {len(result.history)} epochs{where} "
        f"(resumed after {result.resumed_from}); "
        f"val acc {last.get('val_acc', float('nan')):.3f}, "
        f"test acc {test.get('acc', float('nan')):.3f}, "
        f"forward steps {last.get('fwd_iter_mean', 0.0):.1f} mean / "
        f"{last.get('fwd_iter_max', 0)} max; run folder {run_dir}"
    )
    return 0


def distributed_main(argv: Sequence[str] | None = None) -> int:
    """``torchrun -m andersonn_lab.deq.distributed ...``: the train command under DDP.

    Takes the options of ``andersonn-lab train`` (``--batch-size`` is the global batch) and
    shuts the process group down at the end.
    """
    import torch.distributed as dist

    parser = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node=N -m andersonn_lab.deq.distributed",
        description="Train a DEQ classifier with DistributedDataParallel (options of "
        "andersonn-lab train; --batch-size is the global batch).",
    )
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_train(args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``andersonn-lab predict`` to ``parser``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> add_predict_arguments(parser)
    >>> parser.parse_args(["--run-dir", "runs/x", "CCO", "c1ccccc1"]).inputs
    ['CCO', 'c1ccccc1']
    """
    parser.add_argument("--run-dir", required=True, help="folder written by andersonn-lab train")
    parser.add_argument(
        "inputs", nargs="+", help="structure files (.sdf, .mol, .smi, .cif, .xyz, ...) or SMILES"
    )
    parser.add_argument(
        "--checkpoint", default="best", choices=("best", "last"), help="which weights to use"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--batch-size", type=int, default=64)


def _accepted(func: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``options`` that ``func`` takes as keyword arguments."""
    names = inspect.signature(func).parameters
    return {key: value for key, value in options.items() if key in names}


def _read_input(item: str, options: dict[str, Any]):
    """Read a structure file, or parse ``item`` as SMILES.

    The run's graph options (for instance ``cutoff_scale`` of a crystal task) are passed to
    whichever reader accepts them.
    """
    from andersonn_lab.structures import from_atoms, from_mol, from_smiles, read_structure

    path = Path(item)
    if path.exists():
        reader = from_mol if path.suffix.lower() in _MOLECULE_SUFFIXES else from_atoms
        return read_structure(path, **_accepted(reader, options))
    if path.suffix.lower() in _FILE_SUFFIXES:
        raise FileNotFoundError("no such structure file")
    if options.get("conformer"):
        from andersonn_lab.datasets.drugs import graph_from_smiles

        return graph_from_smiles(item, charges=options.get("charges"))
    return from_smiles(item, **_accepted(from_smiles, options))


def run_predict(args: argparse.Namespace) -> int:
    """Classify structures with a trained run; print one line per input.

    Invalid inputs are named on stderr and skipped. Exit status: 0 if every input was
    classified, 1 if some were skipped, 2 if the run folder or checkpoint is unusable.
    """
    from andersonn_lab.structures import ImageOverflowWarning, node_neighbor_image

    run_dir = Path(args.run_dir)
    config_path = run_dir / "config.json"
    try:
        config = json.loads(config_path.read_text())
        encoding, size = config["encoding"], int(config["image_size"])
        model = DEQClassifier.from_config(config["model"])
    except FileNotFoundError:
        return _fail("predict", f"{config_path}: no such file; is {run_dir} a training run?")
    except (ValueError, KeyError, TypeError) as err:
        return _fail("predict", f"{config_path}: unusable run configuration ({err!r})")
    checkpoint = run_dir / "checkpoints" / f"{args.checkpoint}.pt"
    if not checkpoint.exists() and args.checkpoint == "best":
        checkpoint = run_dir / "checkpoints" / "last.pt"
    try:
        load_checkpoint(checkpoint, model)
    except (CheckpointError, FileNotFoundError) as err:
        return _fail("predict", err)
    options = dict(config.get("graph_options") or {})
    names = config.get("class_names") or [str(k) for k in range(config["model"]["num_classes"])]
    images, kept, notes, failed = [], [], [], 0
    for item in args.inputs:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ImageOverflowWarning)
                graph = _read_input(item, options)
                image = node_neighbor_image(graph, encoding=encoding, size=size)
        except Exception as err:  # any failure names the input and moves on
            print(f"skipped {item!r}: {err}", file=sys.stderr)
            failed += 1
            continue
        cropped = any(issubclass(w.category, ImageOverflowWarning) for w in caught)
        images.append(image)
        kept.append(item)
        note = [f"cropped to {size} atoms"] if cropped else []
        if graph.graph.get("conformer_ranking"):
            note.append(f"conformer ranked by {graph.graph['conformer_ranking']}")
        notes.append(", ".join(note))
    if images:
        try:
            device = resolve_device(args.device)
            model.to(device)
            classes, probs, iters = predict(
                model, torch.stack(images), batch_size=args.batch_size, device=device
            )
        except (RuntimeError, ValueError) as err:
            return _fail("predict", err)
        width = max(len("input"), *(len(item) for item in kept))
        print(f"{'input':<{width}}  {'class':<14} probability  iterations")
        for item, cls, prob, steps, note in zip(kept, classes, probs, iters, notes, strict=True):
            name = names[int(cls)] if int(cls) < len(names) else str(int(cls))
            line = f"{item:<{width}}  {name:<14} {float(prob[cls]):>11.3f}  {int(steps):>10d}"
            print(f"{line}  ({note})" if note else line)
    if failed:
        print(f"{failed} of {len(args.inputs)} inputs skipped", file=sys.stderr)
        return 1
    return 0
