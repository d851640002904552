"""Classification tasks as torch datasets of node-neighbor images.

:func:`load_task` reads a task's entries (``drugs``, ``mofs`` or ``crystals``), turns each
structure into an atom-bond network and then into a node-neighbor image, and caches the
images on disk so that later loads are quick.

Examples
--------
>>> from andersonn_lab.datasets import load_task
>>> task = load_task("mofs")  # doctest: +SKIP
>>> image, label = task[0]  # doctest: +SKIP
>>> image.shape, task.class_names[label]  # doctest: +SKIP
(torch.Size([3, 32, 32]), 'small pore (<5 Å)')
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import torch
from torch.utils.data import Dataset, Subset

from andersonn_lab._warnings import warn
from andersonn_lab.datasets.entry import DATA_DIR, Entry, require_task_dir

__all__ = [
    "DEFAULT_GRAPH_OPTIONS",
    "SPLIT_FRACTIONS",
    "TASKS",
    "TaskDataset",
    "default_cache_dir",
    "load_task",
]

TASKS: tuple[str, ...] = ("drugs", "mofs", "crystals")
"""Names accepted by :func:`load_task`."""

SPLIT_FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}
"""Fractions of each class put into each split."""

DEFAULT_GRAPH_OPTIONS: dict[str, dict[str, Any]] = {}
"""Graph options used unless the task module defines ``GRAPH_OPTIONS`` or the caller overrides.

Empty: MOFs and crystals use :func:`~andersonn_lab.structures.from_atoms`' default
``bonds="nearest-shell"`` rule (textbook coordination for crystals, covalent linker bonds
plus metal-linker bonds for MOFs; see ``docs/bonds.md``). Until November 2026 crystals used
the covalent rule at ``cutoff_scale=1.2``, which bonded cations to cations in ionic solids.
"""

_CACHE_FORMAT = 1
_MAX_LISTED = 20  # ids named in one warning


def default_cache_dir() -> Path:
    """Return ``$ANDERSONN_LAB_CACHE`` if set, else ``~/.cache/andersonn_lab``.

    Examples
    --------
    >>> default_cache_dir().name in ("andersonn_lab",) or "ANDERSONN_LAB_CACHE" in os.environ
    True
    """
    env = os.environ.get("ANDERSONN_LAB_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "andersonn_lab"


def _task_module(name: str) -> Any:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks are {', '.join(TASKS)}")
    return importlib.import_module(f"andersonn_lab.datasets.{name}")


def _hash_files(paths: Sequence[Path], digest: Any) -> None:
    for path in paths:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)


def _code_files() -> list[Path]:
    """Source files whose changes invalidate cached images."""
    package = Path(__file__).resolve().parents[1]
    files = sorted((package / "structures").glob("*.py"))
    files.append(Path(__file__).resolve())
    return [f for f in files if f.name != "pores.py"]


def _cache_key(
    name: str, data_dir: Path, encoding: str, image_size: int, graph_options: Mapping[str, Any]
) -> str:
    digest = hashlib.sha256()
    options = repr(sorted(graph_options.items()))
    digest.update(f"{_CACHE_FORMAT}|{name}|{encoding}|{image_size}|{options}".encode())
    data_files = sorted(p for p in data_dir.iterdir() if p.is_file() and p.suffix != ".md")
    _hash_files(data_files, digest)
    _hash_files(_code_files(), digest)
    return digest.hexdigest()


def _graph(entry: Entry, graph_options: Mapping[str, Any] | None = None) -> nx.Graph:
    """The atom-bond network of one entry.

    For molecules two options go beyond :func:`~andersonn_lab.structures.from_smiles`:
    ``conformer=True`` builds the network from the entry's shipped 3-D conformer
    (``entry.info["mol"]``, hydrogens implicit), so distances are real, and
    ``charges="mmff"`` (or ``"gasteiger"``) adds force-field charges and dipole shares
    (:func:`~andersonn_lab.structures.annotate_charges`).
    """
    from andersonn_lab.datasets.drugs import conformer_graph
    from andersonn_lab.structures import StructureError, from_atoms, from_smiles

    options = dict(graph_options or {})
    conformer = bool(options.pop("conformer", False))
    charges = options.pop("charges", None)
    if not isinstance(entry.structure, str):
        return from_atoms(entry.structure, name=entry.id, **options)
    if not conformer:
        if charges:
            raise ValueError("graph option charges needs conformer=True (a 3-D geometry)")
        return from_smiles(entry.structure, name=entry.id, **options)
    mol = entry.info.get("mol")
    if mol is None:
        raise StructureError(f"entry {entry.id!r}: no 3-D conformer in entry.info['mol']")
    if options:
        raise ValueError(f"graph options {sorted(options)} do not apply to conformer graphs")
    return conformer_graph(mol, name=entry.id, charges=charges, smiles=entry.structure)


def _build_images(
    entries: list[Entry], encoding: str, image_size: int, graph_options: Mapping[str, Any]
) -> tuple[list[int], torch.Tensor, list[tuple[str, str]], int]:
    """Images of the entries; returns (kept positions, images, skipped, number cropped)."""
    from andersonn_lab.structures import ImageOverflowWarning, StructureError, node_neighbor_image

    kept: list[int] = []
    images: list[torch.Tensor] = []
    skipped: list[tuple[str, str]] = []
    cropped = 0
    other: dict[str, warnings.WarningMessage] = {}
    for position, entry in enumerate(entries):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                image = node_neighbor_image(
                    _graph(entry, graph_options), encoding=encoding, size=image_size
                )
            except StructureError as error:
                skipped.append((entry.id, str(error)))
                continue
        if any(issubclass(w.category, ImageOverflowWarning) for w in caught):
            cropped += 1
        for w in caught:
            if not issubclass(w.category, ImageOverflowWarning):
                other.setdefault(f"{w.category.__name__}: {w.message}", w)
        kept.append(position)
        images.append(torch.as_tensor(image, dtype=torch.float32))
    for w in list(other.values())[:5]:
        warn(w.message, w.category)
    if not images:
        raise ValueError("no entry could be turned into an image")
    return kept, torch.stack(images), skipped, cropped


def _read_cache(path: Path, key: str) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        cached = torch.load(path, map_location="cpu", weights_only=True)
        ok = (
            isinstance(cached, dict)
            and cached.get("key") == key
            and isinstance(cached.get("images"), torch.Tensor)
            and isinstance(cached.get("ids"), list)
            and isinstance(cached.get("skipped"), list)
            and isinstance(cached.get("n_cropped"), int)
            and cached["images"].shape[0] == len(cached["ids"])
            and cached["images"].dtype == torch.float32
            and torch.isfinite(cached["images"]).all()
        )
        if ok:
            return cached
        reason = "its contents do not match the data"
    except Exception as error:  # any unreadable file is rebuilt, whatever the failure
        reason = f"{type(error).__name__}: {error}"
    warn(f"ignoring corrupt image cache {path} ({reason}); rebuilding it")
    return None


def _write_cache(path: Path, payload: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        os.close(fd)
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except OSError as error:
        warn(f"could not write image cache {path}: {error}")


def _split_rank(entry_id: str, seed: int) -> bytes:
    return hashlib.blake2b(f"{seed}|{entry_id}".encode(), digest_size=8).digest()


def stratified_split(
    ids: Sequence[str],
    labels: Sequence[int],
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Split positions ``0..n-1`` into train/val/test, 70/15/15 within each class.

    Within a class, entries are ordered by a hash of ``(seed, id)``, so an entry's split
    depends only on the seed and on its class's size, not on the order of the data.

    With ``groups``, entries that share a group key always land in the same split (near-
    identical structures cannot straddle train and test). Groups are ordered by a hash of
    ``(seed, group key)`` within the class of their first member (lowest position) and are
    assigned whole: a group goes to train while fewer than 70 % of its class's entries are
    there, then to val while fewer than 85 %, else to test. Members of another class go with
    their group. Without ``groups`` (or with every key distinct and equal to the id) the split
    is the same as before groups existed.

    Parameters
    ----------
    ids:
        Entry ids (unique).
    labels:
        Class index of each entry.
    seed:
        Split seed.
    groups:
        Optional group key per entry (e.g. a CSD refcode stem for MOFs).

    Returns
    -------
    dict
        ``{"train", "val", "test"}`` → sorted ``LongTensor`` of positions.

    Raises
    ------
    ValueError
        If ``labels`` or ``groups`` does not have one value per id.

    Examples
    --------
    >>> split = stratified_split([f"m{i}" for i in range(20)], [0] * 10 + [1] * 10)
    >>> [len(split[name]) for name in ("train", "val", "test")]
    [14, 4, 2]
    >>> ids, groups = ["a1", "a2", "b", "c", "d"], ["a", "a", "b", "c", "d"]
    >>> split = stratified_split(ids, [0] * 5, seed=3, groups=groups)
    >>> [name for name, part in split.items() if {0, 1} <= set(part.tolist())]  # a1, a2 together
    ['train']
    """
    if len(labels) != len(ids):
        raise ValueError(f"labels: {len(labels)} values for {len(ids)} ids")
    if groups is None:
        groups = list(ids)
    elif len(groups) != len(ids):
        raise ValueError(f"groups: {len(groups)} values for {len(ids)} ids")
    members: dict[str, list[int]] = {}
    for position, key in enumerate(groups):
        members.setdefault(str(key), []).append(position)
    parts: dict[str, list[int]] = {name: [] for name in SPLIT_FRACTIONS}
    by_class: dict[int, list[str]] = {}
    class_size: Counter[int] = Counter(int(label) for label in labels)
    for key, positions in members.items():
        by_class.setdefault(int(labels[positions[0]]), []).append(key)
    for label, keys in by_class.items():
        keys = sorted(keys, key=lambda k: _split_rank(k, seed))
        n = class_size[label]
        n_train = round(SPLIT_FRACTIONS["train"] * n)
        n_val = min(n - n_train, round(SPLIT_FRACTIONS["val"] * n))
        taken = 0
        for key in keys:
            name = "train" if taken < n_train else "val" if taken < n_train + n_val else "test"
            parts[name] += members[key]
            taken += len(members[key])
    return {name: torch.tensor(sorted(p), dtype=torch.long) for name, p in parts.items()}


class TaskDataset(Dataset):
    """Node-neighbor images and labels of one task.

    ``dataset[i]`` is ``(image, label)``: a float32 tensor ``(C, H, W)`` and an ``int``.

    Attributes
    ----------
    name:
        Task name.
    ids:
        Entry ids, in dataset order.
    labels:
        ``LongTensor`` of class indices.
    images:
        All images stacked, ``(N, C, H, W)`` float32.
    class_names:
        Names of the classes, indexed by label.
    entries:
        The :class:`Entry` objects, in dataset order.
    split:
        ``{"train", "val", "test"}`` → ``LongTensor`` of positions (seeded, stratified; entries
        of one group, see ``groups``, always in the same part).
    groups:
        Split group of each entry (its id unless the task module defines ``split_groups``;
        MOFs: the CSD refcode stem; crystals: the reduced formula), see
        :func:`stratified_split`.
    id_to_index:
        Entry id → position.
    skipped:
        ``(id, reason)`` of entries left out because their structure failed.
    n_cropped:
        Number of structures with more atoms than image rows (cropped).
    from_cache:
        Whether the images were read from the disk cache.
    """

    def __init__(
        self,
        name: str,
        entries: list[Entry],
        images: torch.Tensor,
        class_names: Sequence[str],
        *,
        encoding: str,
        image_size: int,
        split_seed: int = 0,
        skipped: list[tuple[str, str]] | None = None,
        n_cropped: int = 0,
        from_cache: bool = False,
        graph_options: Mapping[str, Any] | None = None,
        groups: Sequence[str] | None = None,
    ) -> None:
        if len(entries) != images.shape[0]:
            raise ValueError(f"{len(entries)} entries but {images.shape[0]} images")
        self.name = name
        self.entries = list(entries)
        self.images = images
        self.class_names = tuple(class_names)
        self.encoding = encoding
        self.image_size = image_size
        self.split_seed = split_seed
        self.ids = [e.id for e in self.entries]
        self.labels = torch.tensor([int(e.label) for e in self.entries], dtype=torch.long)
        if len(self.labels) and (
            self.labels.min() < 0 or self.labels.max() >= len(self.class_names)
        ):
            raise ValueError(f"labels outside 0..{len(self.class_names) - 1}")
        self.id_to_index = {entry_id: i for i, entry_id in enumerate(self.ids)}
        self.groups = list(self.ids) if groups is None else [str(g) for g in groups]
        if len(self.groups) != len(self.ids):
            raise ValueError(f"groups: {len(self.groups)} values for {len(self.ids)} entries")
        self.split = stratified_split(self.ids, self.labels.tolist(), split_seed, self.groups)
        self.skipped = list(skipped or [])
        self.n_cropped = n_cropped
        self.from_cache = from_cache
        self.graph_options = dict(graph_options or {})
        self._graphs: dict[int, nx.Graph] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    def graph(self, index: int) -> nx.Graph:
        """Atom-bond network of entry ``index`` (built on first use, then kept)."""
        index = range(len(self))[index]  # normalises negative indices, raises IndexError
        if index not in self._graphs:
            self._graphs[index] = _graph(self.entries[index], self.graph_options)
        return self._graphs[index]

    def subset(self, split_name: str) -> Subset:
        """Return the ``"train"``, ``"val"`` or ``"test"`` part as a torch ``Subset``."""
        if split_name not in self.split:
            raise ValueError(f"unknown split {split_name!r}; use one of {', '.join(self.split)}")
        return Subset(self, self.split[split_name].tolist())

    def class_balance(self) -> dict[str, int]:
        """Number of entries per class, keyed by class name."""
        counts = torch.bincount(self.labels, minlength=len(self.class_names)).tolist()
        return dict(zip(self.class_names, counts, strict=True))

    def __repr__(self) -> str:
        shape = tuple(self.images.shape[1:])
        balance = ", ".join(f"{k}: {v}" for k, v in self.class_balance().items())
        return (
            f"TaskDataset({self.name!r}, n={len(self)}, image={shape}, "
            f"encoding={self.encoding!r}, classes=[{balance}])"
        )


def load_task(
    name: str,
    *,
    encoding: str = "adjacency",
    image_size: int = 32,
    split_seed: int = 0,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    graph_options: Mapping[str, Any] | None = None,
) -> TaskDataset:
    """Load a classification task as a :class:`TaskDataset` of node-neighbor images.

    Parameters
    ----------
    name:
        ``"drugs"`` (polar or not), ``"mofs"`` (pore size) or ``"crystals"`` (metal,
        semiconductor or insulator).
    encoding, image_size:
        Passed to :func:`andersonn_lab.structures.node_neighbor_image`.
    split_seed:
        Seed of the stratified 70/15/15 train/val/test split. Tasks whose module defines
        ``split_groups`` (MOFs, crystals) keep each group in one part.
    data_dir:
        Folder holding the task's data files (default ``DATA_DIR / name``).
    cache_dir:
        Image cache folder (default :func:`default_cache_dir`). Cache files are keyed by a
        hash of the data files, the encoding, the image size, ``graph_options`` and the
        image-building code.
    graph_options:
        Extra keyword arguments of :func:`~andersonn_lab.structures.from_smiles` (drugs) or
        :func:`~andersonn_lab.structures.from_atoms` (MOFs, crystals), e.g.
        ``{"cutoff_scale": 1.2}``; they update the task's defaults (the task module's
        ``GRAPH_OPTIONS`` if it has one, else :data:`DEFAULT_GRAPH_OPTIONS`).

    Raises
    ------
    ValueError
        For an unknown task name.
    FileNotFoundError
        If the task's data folder or files are missing (the message says how to get them).

    Warns
    -----
    UserWarning
        Once listing entries skipped because their structure failed, once with the number of
        structures cropped to fit the image, and when a corrupt cache file is rebuilt.

    Examples
    --------
    >>> task = load_task("drugs", image_size=32)  # doctest: +SKIP
    >>> train = task.subset("train")  # doctest: +SKIP
    """
    module = _task_module(name)
    folder = Path(data_dir) if data_dir is not None else DATA_DIR / name
    entries = module.load_entries(require_task_dir(folder, name))
    if not entries:
        raise ValueError(f"task {name!r} has no entries in {folder}")
    defaults = getattr(module, "GRAPH_OPTIONS", DEFAULT_GRAPH_OPTIONS.get(name, {}))
    graph_options = {**defaults, **(graph_options or {})}
    key = _cache_key(name, folder, encoding, image_size, graph_options)
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_path = cache_root / f"{name}-{encoding}-{image_size}-{key[:16]}.pt"
    cached = _read_cache(cache_path, key)
    by_id = {e.id: i for i, e in enumerate(entries)}
    if cached is not None and all(i in by_id for i in cached["ids"]):
        kept = [by_id[i] for i in cached["ids"]]
        images = cached["images"]
        skipped = [tuple(s) for s in cached["skipped"]]
        n_cropped = int(cached["n_cropped"])
        from_cache = True
    else:
        kept, images, skipped, n_cropped = _build_images(
            entries, encoding, image_size, graph_options
        )
        payload = {
            "key": key,
            "ids": [entries[i].id for i in kept],
            "images": images,
            "skipped": [list(s) for s in skipped],
            "n_cropped": n_cropped,
        }
        _write_cache(cache_path, payload)
        from_cache = False
    if skipped:
        listed = ", ".join(entry_id for entry_id, _ in skipped[:_MAX_LISTED])
        more = f" and {len(skipped) - _MAX_LISTED} more" if len(skipped) > _MAX_LISTED else ""
        warn(
            f"{name}: skipped {len(skipped)} of {len(entries)} entries whose structure failed: "
            f"{listed}{more} (reasons in dataset.skipped)"
        )
    if n_cropped:
        from andersonn_lab.structures import ImageOverflowWarning

        warn(
            f"{name}: {n_cropped} of {len(kept)} structures have more rows (atoms; classes of "
            f"equivalent atoms in the 'framework' encoding) than the {image_size}-row image and "
            "were cropped; use a larger image_size to keep them whole",
            ImageOverflowWarning,
        )
    kept_entries = [entries[i] for i in kept]
    split_groups = getattr(module, "split_groups", None)
    return TaskDataset(
        name,
        kept_entries,
        images,
        module.CLASS_NAMES,
        encoding=encoding,
        image_size=image_size,
        split_seed=split_seed,
        skipped=skipped,
        n_cropped=n_cropped,
        from_cache=from_cache,
        graph_options=graph_options,
        groups=None if split_groups is None else split_groups(kept_entries),
    )
