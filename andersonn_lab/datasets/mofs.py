"""Metal-organic frameworks from CoRE MOF 2019, labelled by largest cavity diameter (LCD).

Classes (CoRE MOF 2019 Zeo++ LCD, in Å): ``0`` LCD < 5, ``1`` 5 <= LCD < 7, ``2`` LCD >= 7.

The shipped data (``data/mofs/mofs.npz``) holds a seeded, class-balanced sample of the
CoRE MOF 2019 "all solvent removed" (ASR) set: entries with ``Extension == 'clean'``, not
flagged ``DISORDER``, at most ``max_atoms`` atoms per cell, no two atoms closer than 0.5 Å.
:func:`build` recreates it from the ``CoRE-MOF`` package (``pip install CoRE-MOF``);
:func:`load_entries` reads it.

Examples
--------
>>> from andersonn_lab.datasets.mofs import label_for_lcd, CLASS_NAMES
>>> CLASS_NAMES[label_for_lcd(6.2)]
'medium pore (5-7 Å)'
"""

from __future__ import annotations

import csv
import io
import math
import re
import shlex
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from ase.geometry import cellpar_to_cell

from andersonn_lab.datasets.entry import DATA_DIR, Entry

__all__ = [
    "CLASS_NAMES",
    "DATA_FILE",
    "LCD_EDGES",
    "CifError",
    "P1Cif",
    "build",
    "label_for_lcd",
    "load_entries",
    "parse_p1_cif",
    "save_entries",
    "split_group",
    "split_groups",
]

CLASS_NAMES = ("small pore (<5 Å)", "medium pore (5-7 Å)", "large pore (≥7 Å)")
"""Class names, indexed by label."""

LCD_EDGES = (5.0, 7.0)
"""Class boundaries in Å: label = number of edges that the LCD reaches or exceeds."""

DATA_FILE = "mofs.npz"
"""File name of the parsed structures inside the data folder."""

FORMAT_VERSION = 1

MIN_DISTANCE = 0.5
"""Structures with two atoms closer than this (Å, periodic) are skipped as broken."""


def label_for_lcd(lcd: float) -> int:
    """Return the pore-size class of a largest cavity diameter in Å.

    Examples
    --------
    >>> [label_for_lcd(x) for x in (4.99, 5.0, 6.99, 7.0)]
    [0, 1, 1, 2]
    """
    if not math.isfinite(lcd) or lcd < 0:
        raise ValueError(f"LCD must be a finite number >= 0, got {lcd!r}")
    return sum(lcd >= edge for edge in LCD_EDGES)


_REFCODE = re.compile(r"^([A-Z]{6})(\d{2})?(?:_|$)")


def split_group(mof_id: str) -> str:
    """The split group of a CoRE MOF id: its CSD refcode family, else the id itself.

    CSD refcodes are six letters plus an optional two-digit suffix for redeterminations and
    polymorphs of the same compound (``MAGVOG04``, ``MAGVOG20``...). Such entries are often
    the same framework measured twice, so all ids whose refcode has the same six-letter stem
    form one group, which :func:`~andersonn_lab.datasets.tasks.stratified_split` keeps in one
    part of every split. Ids that are not CSD refcodes are CoRE's names of journal supplement
    files (``ja500618z_si_006_clean``, ``ja500618z_si_007_clean``): structures from one
    article's supplement form one group, keyed by the text before the first underscore.

    Examples
    --------
    >>> split_group("MAGVOG04_clean"), split_group("MAGVOG27_clean"), split_group("ABAVIJ_clean")
    ('MAGVOG', 'MAGVOG', 'ABAVIJ')
    >>> split_group("ja500618z_si_006_clean")
    'ja500618z'
    """
    if not isinstance(mof_id, str) or not mof_id.strip("_"):
        raise ValueError(f"mof_id must be a non-empty string, got {mof_id!r}")
    match = _REFCODE.match(mof_id)
    if match:
        return match.group(1)
    return mof_id.split("_")[0] or mof_id


def split_groups(entries: list[Entry]) -> list[str]:
    """:func:`split_group` of each entry's id, as :func:`~andersonn_lab.datasets.load_task` uses."""
    return [split_group(entry.id) for entry in entries]


# --------------------------------------------------------------------------- CIF reading


class CifError(ValueError):
    """A CIF that :func:`parse_p1_cif` cannot or will not read."""


@dataclass(frozen=True)
class P1Cif:
    """Cell and atoms of a P1 CIF.

    Attributes
    ----------
    cellpar:
        ``(a, b, c, alpha, beta, gamma)`` in Å and degrees.
    numbers:
        Atomic numbers, shape ``(n,)``.
    frac:
        Fractional coordinates as written in the file, shape ``(n, 3)``.
    """

    cellpar: tuple[float, float, float, float, float, float]
    numbers: np.ndarray
    frac: np.ndarray

    def to_atoms(self) -> Atoms:
        """Return the structure as a periodic :class:`ase.Atoms`."""
        return Atoms(
            numbers=self.numbers,
            scaled_positions=self.frac,
            cell=cellpar_to_cell(list(self.cellpar)),
            pbc=True,
        )


_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?:\(\d+\))?$")
_ELEMENT = re.compile(r"^([A-Z][a-z]?)")
_CELL_KEYS = (
    "_cell_length_a",
    "_cell_length_b",
    "_cell_length_c",
    "_cell_angle_alpha",
    "_cell_angle_beta",
    "_cell_angle_gamma",
)
_SYMOP_KEYS = ("_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz")
_SPACE_GROUP_KEYS = ("_symmetry_space_group_name_h-m", "_space_group_name_h-m_alt")


def _number(text: str, what: str) -> float:
    match = _NUMBER.match(text)
    if match is None:
        raise CifError(f"{what}: {text!r} is not a number")
    return float(match.group(1))


def _split(line: str) -> list[str]:
    if "'" in line or '"' in line:
        try:
            return shlex.split(line, posix=True)
        except ValueError as error:
            raise CifError(f"cannot split line {line!r}: {error}") from None
    return line.split()


def _loops_and_items(text: str) -> tuple[dict[str, str], list[tuple[list[str], list[str]]]]:
    """Split a single-block CIF into ``{tag: value}`` and ``[(tags, values), ...]`` loops."""
    items: dict[str, str] = {}
    loops: list[tuple[list[str], list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line or line.startswith("#") or line.startswith("data_"):
            i += 1
            continue
        if line.startswith(";"):
            raise CifError("multi-line text fields are not supported")
        if line.lower() == "loop_":
            tags: list[str] = []
            i += 1
            while i < len(lines) and lines[i].strip().startswith("_"):
                tags.append(lines[i].strip().split()[0].lower())
                i += 1
            values: list[str] = []
            while i < len(lines):
                row = lines[i].strip()
                if not row or row.startswith("#"):
                    i += 1
                    if values:
                        # a blank line ends a loop only when a new item or loop follows
                        continue
                    continue
                if row.startswith("_") or row.lower() == "loop_" or row.startswith("data_"):
                    break
                if row.startswith(";"):
                    raise CifError("multi-line text fields are not supported")
                values.extend(_split(row))
                i += 1
            loops.append((tags, values))
            continue
        if line.startswith("_"):
            parts = line.split(None, 1)
            tag = parts[0].lower()
            if len(parts) == 2:
                value = parts[1].strip()
            else:
                i += 1
                value = lines[i].strip() if i < len(lines) else ""
            split_value = _split(value)
            items[tag] = split_value[0] if len(split_value) == 1 else value
            i += 1
            continue
        raise CifError(f"unexpected line {i + 1}: {line[:60]!r}")
    return items, loops


def _loop_with(loops: list[tuple[list[str], list[str]]], tag: str) -> dict[str, list[str]] | None:
    for tags, values in loops:
        if tag in tags:
            if len(values) % len(tags):
                raise CifError(f"loop with {tag} has {len(values)} values for {len(tags)} columns")
            n = len(tags)
            return {t: values[j::n] for j, t in enumerate(tags)}
    return None


def parse_p1_cif(text: str) -> P1Cif:
    """Read the cell and atoms of a CIF in space group P1.

    A small reader for the CoRE MOF files: one data block, cell lengths and angles, an
    ``_atom_site_fract_x/y/z`` loop with ``_atom_site_type_symbol`` (or element-prefixed
    labels), and no symmetry operation other than ``x,y,z``.

    Parameters
    ----------
    text:
        The CIF file's contents.

    Raises
    ------
    CifError
        For another space group, partial occupancies, unknown elements or missing fields.

    Examples
    --------
    >>> cif = '''data_x
    ... _cell_length_a 4.0
    ... _cell_length_b 4.0
    ... _cell_length_c 4.0
    ... _cell_angle_alpha 90
    ... _cell_angle_beta 90
    ... _cell_angle_gamma 90
    ... loop_
    ... _atom_site_label
    ... _atom_site_fract_x
    ... _atom_site_fract_y
    ... _atom_site_fract_z
    ... Cu1 0.0 0.0 0.0
    ... O1 0.5 0.5 0.5(2)
    ... '''
    >>> parsed = parse_p1_cif(cif)
    >>> parsed.numbers.tolist(), parsed.frac[1].tolist()
    ([29, 8], [0.5, 0.5, 0.5])
    """
    items, loops = _loops_and_items(text)
    try:
        cellpar = tuple(_number(items[key], key) for key in _CELL_KEYS)
    except KeyError as error:
        raise CifError(f"missing cell parameter {error.args[0]}") from None
    for key in _SYMOP_KEYS:
        ops = _loop_with(loops, key)
        if ops is None and key in items:
            ops = {key: [items[key]]}
        if ops is not None:
            normal = {op.replace(" ", "").replace("'", "").lower() for op in ops[key]}
            if normal != {"x,y,z"}:
                raise CifError(f"not P1: {len(ops[key])} symmetry operations")
    for key in _SPACE_GROUP_KEYS:
        if key in items and items[key].replace(" ", "").upper() not in ("P1", "?", "."):
            raise CifError(f"not P1: space group {items[key]!r}")
    sites = _loop_with(loops, "_atom_site_fract_x")
    if sites is None:
        raise CifError("no _atom_site_fract_x loop")
    for axis in "yz":
        if f"_atom_site_fract_{axis}" not in sites:
            raise CifError(f"no _atom_site_fract_{axis} column")
    names = sites.get("_atom_site_type_symbol") or sites.get("_atom_site_label")
    if names is None:
        raise CifError("no _atom_site_type_symbol or _atom_site_label column")
    numbers = []
    for name in names:
        match = _ELEMENT.match(name)
        element = match.group(1) if match else ""
        if element not in atomic_numbers and match and element[:1] in atomic_numbers:
            element = element[:1]  # label like "CA1" meaning carbon
        if element not in atomic_numbers:
            raise CifError(f"unknown element in {name!r}")
        numbers.append(atomic_numbers[element])
    if "_atom_site_occupancy" in sites:
        occupancy = np.array([_number(v, "occupancy") for v in sites["_atom_site_occupancy"]])
        if np.any(occupancy < 0.99):
            raise CifError(f"{int(np.sum(occupancy < 0.99))} sites with partial occupancy")
    frac = np.array(
        [
            [_number(v, f"_atom_site_fract_{axis}") for v in sites[f"_atom_site_fract_{axis}"]]
            for axis in "xyz"
        ]
    ).T
    if len(numbers) == 0:
        raise CifError("no atoms")
    if not (np.all(np.isfinite(frac)) and all(math.isfinite(x) and x > 0 for x in cellpar)):
        raise CifError("non-finite coordinates or cell parameters")
    return P1Cif(cellpar=cellpar, numbers=np.array(numbers, dtype=np.int64), frac=frac)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- loading


def _data_path(data_dir: str | Path | None) -> Path:
    folder = Path(data_dir) if data_dir is not None else DATA_DIR / "mofs"
    return folder / DATA_FILE if folder.is_dir() or folder.suffix != ".npz" else folder


def load_entries(data_dir: str | Path | None = None) -> list[Entry]:
    """Load the shipped MOFs as :class:`Entry` objects.

    Parameters
    ----------
    data_dir:
        Folder holding ``mofs.npz`` (default ``DATA_DIR / "mofs"``).

    Returns
    -------
    list of Entry
        ``structure`` is a periodic :class:`ase.Atoms`; ``info`` holds the CoRE MOF 2019
        Zeo++ values ``lcd`` and ``pld`` (Å) and ``void_fraction`` (``AV_VF``).

    Examples
    --------
    >>> entries = load_entries()  # doctest: +SKIP
    >>> entries[0].structure.pbc.all(), CLASS_NAMES[entries[0].label]  # doctest: +SKIP
    (True, 'small pore (<5 Å)')
    """
    path = _data_path(data_dir)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; build it with `andersonn-lab data build mofs` "
            "(needs pip install CoRE-MOF)"
        )
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    if int(arrays["format_version"]) != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {int(arrays['format_version'])} unsupported")
    offsets = np.concatenate([[0], np.cumsum(arrays["n_atoms"])])
    entries = []
    for i, mof_id in enumerate(arrays["ids"].tolist()):
        lo, hi = offsets[i], offsets[i + 1]
        atoms = Atoms(
            numbers=arrays["numbers"][lo:hi].astype(int),
            scaled_positions=arrays["frac"][lo:hi],
            cell=arrays["cells"][i],
            pbc=True,
        )
        info = {
            "lcd": float(arrays["lcd"][i]),
            "pld": float(arrays["pld"][i]),
            "void_fraction": float(arrays["void_fraction"][i]),
        }
        entries.append(
            Entry(id=str(mof_id), label=int(arrays["labels"][i]), structure=atoms, info=info)
        )
    return entries


def save_entries(entries: list[Entry], out_dir: str | Path) -> Path:
    """Write MOF entries to ``out_dir / mofs.npz`` in the format :func:`load_entries` reads.

    Positions are stored as fractional coordinates in the entry's cell.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from ase import Atoms
    >>> atoms = Atoms("Zn", positions=[[0, 0, 0]], cell=np.eye(3) * 8.0, pbc=True)
    >>> info = {"lcd": 6.0, "pld": 5.0, "void_fraction": 0.5}
    >>> folder = tempfile.mkdtemp()
    >>> path = save_entries([Entry("toy", 1, atoms, info)], folder)
    >>> load_entries(folder)[0].info["lcd"]
    6.0
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / DATA_FILE
    structures: list[Atoms] = [e.structure for e in entries]
    np.savez_compressed(
        path,
        format_version=np.array(FORMAT_VERSION),
        ids=np.array([e.id for e in entries], dtype=str),
        labels=np.array([e.label for e in entries], dtype=np.int8),
        lcd=np.array([e.info["lcd"] for e in entries], dtype=float),
        pld=np.array([e.info.get("pld", math.nan) for e in entries], dtype=float),
        void_fraction=np.array(
            [e.info.get("void_fraction", math.nan) for e in entries], dtype=float
        ),
        n_atoms=np.array([len(a) for a in structures], dtype=np.int32),
        cells=np.array([np.array(a.cell) for a in structures], dtype=float).reshape(-1, 3, 3),
        numbers=np.concatenate([a.numbers for a in structures]).astype(np.uint8),
        frac=np.concatenate([a.get_scaled_positions(wrap=False) for a in structures]),
    )
    return path


# --------------------------------------------------------------------------- building


def _core_mof_files() -> tuple[Path, Path]:
    try:
        import CoRE_MOF  # type: ignore[import-not-found]
    except ImportError:
        raise ImportError(
            "building the MOF data needs the CoRE-MOF package: pip install CoRE-MOF "
            "(or pip install 'andersonn_lab[data]')"
        ) from None
    root = Path(CoRE_MOF.__file__).resolve().parent / "data"
    files = (root / "2019-ASR.csv", root / "2019-ASR.tar.xz")
    for file in files:
        if not file.is_file():
            raise FileNotFoundError(f"{file} is missing from the CoRE-MOF package")
    return files


def _iter_cifs(archive: Path, wanted: set[str]) -> Iterator[tuple[str, str]]:
    with tarfile.open(archive, "r:xz") as tar:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1]
            if not (member.isfile() and name.endswith(".cif")) or name.startswith("."):
                continue
            mof_id = name[: -len(".cif")]
            if mof_id in wanted:
                handle = tar.extractfile(member)
                if handle is not None:
                    yield mof_id, handle.read().decode("utf-8", errors="replace")


def _overlap(atoms: Atoms) -> str:
    """Describe the closest pair of atoms nearer than :data:`MIN_DISTANCE`, or return ``""``."""
    from ase.neighborlist import neighbor_list

    first, second, distance = neighbor_list("ijd", atoms, MIN_DISTANCE)
    if len(distance) == 0:
        return ""
    k = int(np.argmin(distance))
    return (
        f"overlapping atoms: {first[k]} ({atoms[first[k]].symbol}) and {second[k]} "
        f"({atoms[second[k]].symbol}) are {distance[k]:.3f} Å apart (< {MIN_DISTANCE} Å)"
    )


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def build(
    out_dir: str | Path | None = None,
    *,
    n_per_class: int = 300,
    max_atoms: int = 200,
    seed: int = 0,
    limit: int | None = None,
    n_verify: int = 20,
    n_lcd: int = 200,
    progress: bool = False,
) -> Path:
    """Build ``mofs.npz`` and ``PROVENANCE.md`` from the CoRE MOF 2019 ASR set.

    Parameters
    ----------
    out_dir:
        Output folder (default ``DATA_DIR / "mofs"``).
    n_per_class:
        MOFs drawn per LCD class (all of a class if it has fewer).
    max_atoms:
        Largest number of atoms per unit cell kept.
    seed:
        Seed of the stratified sample and of the verification samples.
    limit:
        If given, keep at most this many MOFs in total (``limit // 3`` per class, for quick
        builds); overrides ``n_per_class`` when smaller.
    n_verify:
        Number of selected CIFs re-read with :func:`ase.io.read` to check the fast reader.
    n_lcd:
        Number of selected MOFs whose LCD is recomputed with
        :func:`andersonn_lab.structures.pores.largest_cavity_diameter` and compared with
        CoRE's Zeo++ value (0 skips it).
    progress:
        Print progress to stdout.

    Returns
    -------
    Path
        The written ``mofs.npz``.
    """
    out = Path(out_dir) if out_dir is not None else DATA_DIR / "mofs"
    if limit is not None:
        n_per_class = max(1, min(n_per_class, limit // len(CLASS_NAMES)))
    csv_path, archive = _core_mof_files()
    say = print if progress else (lambda *a, **k: None)

    excluded: dict[str, int] = {}
    skipped: list[tuple[str, str]] = []  # (id, reason) for entries that failed
    table: dict[str, dict[str, float]] = {}
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        mof_id = row["filename"]
        if row["Extension"] != "clean":
            excluded["Extension is not 'clean'"] = excluded.get("Extension is not 'clean'", 0) + 1
            continue
        if row["DISORDER"] == "DISORDER":
            excluded["flagged DISORDER"] = excluded.get("flagged DISORDER", 0) + 1
            continue
        lcd = _float_or_nan(row["LCD"])
        if not math.isfinite(lcd) or lcd < 0:
            skipped.append((mof_id, f"LCD value {row['LCD']!r} is not a number >= 0"))
            continue
        table[mof_id] = {
            "lcd": lcd,
            "pld": _float_or_nan(row["PLD"]),
            "void_fraction": _float_or_nan(row["AV_VF"]),
        }
    say(f"{len(rows)} rows, {len(table)} candidates; reading CIFs")

    parsed: dict[str, P1Cif] = {}
    t0 = time.perf_counter()
    for mof_id, text in _iter_cifs(archive, set(table)):
        try:
            parsed[mof_id] = parse_p1_cif(text)
        except CifError as error:
            skipped.append((mof_id, f"CIF not read: {error}"))
    parse_seconds = time.perf_counter() - t0
    for mof_id in sorted(set(table) - set(parsed) - {s[0] for s in skipped}):
        skipped.append((mof_id, "CIF missing from the archive"))
    too_big = [m for m, p in parsed.items() if len(p.numbers) > max_atoms]
    excluded[f"more than {max_atoms} atoms per cell"] = len(too_big)
    eligible = []
    for mof_id in sorted(set(parsed) - set(too_big)):
        problem = _overlap(parsed[mof_id].to_atoms())
        if problem:
            skipped.append((mof_id, problem))
        else:
            eligible.append(mof_id)
    say(f"parsed {len(parsed)} CIFs in {parse_seconds:.1f} s; {len(eligible)} eligible")

    rng = np.random.default_rng(seed)
    by_class: list[list[str]] = [[] for _ in CLASS_NAMES]
    for mof_id in eligible:
        by_class[label_for_lcd(table[mof_id]["lcd"])].append(mof_id)
    selected: list[str] = []
    for members in by_class:
        take = min(n_per_class, len(members))
        picked = rng.choice(len(members), size=take, replace=False) if take else []
        selected.extend(sorted(members[i] for i in picked))

    entries = []
    for mof_id in selected:
        cif = parsed[mof_id]
        entries.append(
            Entry(
                id=mof_id,
                label=label_for_lcd(table[mof_id]["lcd"]),
                structure=cif.to_atoms(),
                info=dict(table[mof_id]),
            )
        )
    labels = [e.label for e in entries]
    path = save_entries(entries, out)
    say(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {len(selected)} MOFs)")

    verify_rng = np.random.default_rng(seed + 1)
    verify_ids = sorted(
        selected[i] for i in verify_rng.choice(len(selected), min(n_verify, len(selected)), False)
    )
    verification = _verify_with_ase(archive, verify_ids, parsed)
    say(f"reader check: {verification['summary']}")
    agreement = _lcd_agreement(selected, table, path, n_lcd, seed + 2, say)
    _write_provenance(
        out / "PROVENANCE.md",
        n_rows=len(rows),
        excluded=excluded,
        skipped=skipped,
        by_class=by_class,
        selected=selected,
        labels=labels,
        n_per_class=n_per_class,
        max_atoms=max_atoms,
        seed=seed,
        parse_seconds=parse_seconds,
        n_parsed=len(parsed) + sum(r.startswith("CIF not read") for _, r in skipped),
        verification=verification,
        agreement=agreement,
        size_mb=path.stat().st_size / 1e6,
    )
    return path


def _verify_with_ase(archive: Path, ids: list[str], parsed: dict[str, P1Cif]) -> dict:
    """Compare the fast reader with ase.io.read on ``ids``."""
    import warnings

    from ase.io import read

    rows = []
    seconds = 0.0
    for mof_id, text in _iter_cifs(archive, set(ids)):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = read(io.StringIO(text), format="cif")
        seconds += time.perf_counter() - t0
        ours = parsed[mof_id].to_atoms()
        same_species = len(ours) == len(reference) and bool(
            np.all(ours.numbers == reference.numbers)
        )
        cell_error = float(np.abs(np.array(ours.cell) - np.array(reference.cell)).max())
        if same_species:
            delta = ours.get_scaled_positions(wrap=False) - reference.get_scaled_positions(
                wrap=False
            )
            delta -= np.round(delta)
            position_error = float(np.abs(delta @ np.array(reference.cell)).max())
        else:
            position_error = math.inf
        rows.append((mof_id, len(ours), len(reference), same_species, cell_error, position_error))
    ok = [r for r in rows if r[3] and r[4] < 1e-6 and r[5] < 1e-6]
    summary = (
        f"{len(ok)}/{len(rows)} CIFs identical to ase.io.read (same species in the same order, "
        f"cell and positions within 1e-6 Å; largest position difference "
        f"{max((r[5] for r in rows), default=0):.2e} Å); ase.io.read took "
        f"{seconds / max(len(rows), 1):.2f} s per file"
    )
    return {"rows": rows, "summary": summary, "ase_seconds": seconds / max(len(rows), 1)}


def _lcd_agreement(
    selected: list[str],
    table: dict[str, dict[str, float]],
    path: Path,
    n_lcd: int,
    seed: int,
    say,
) -> dict | None:
    """Recompute the LCD of a seeded sample and compare with CoRE's Zeo++ values."""
    if n_lcd <= 0 or not selected:
        return None
    from andersonn_lab.structures.pores import largest_cavity_diameter

    entries = {e.id: e for e in load_entries(path.parent)}
    rng = np.random.default_rng(seed)
    sample = sorted(
        selected[i] for i in rng.choice(len(selected), min(n_lcd, len(selected)), False)
    )
    ours, theirs, seconds = [], [], []
    for k, mof_id in enumerate(sample):
        t0 = time.perf_counter()
        ours.append(largest_cavity_diameter(entries[mof_id].structure))
        seconds.append(time.perf_counter() - t0)
        theirs.append(table[mof_id]["lcd"])
        if (k + 1) % 25 == 0:
            say(f"LCD {k + 1}/{len(sample)}")
    a, b = np.array(ours), np.array(theirs)
    error = a - b
    same_class = np.mean([label_for_lcd(x) == label_for_lcd(y) for x, y in zip(a, b, strict=True)])
    with open(path.parent / "lcd_agreement.csv", "w", encoding="utf-8") as handle:
        handle.write("id,lcd_core_zeopp,lcd_andersonn_lab,seconds\n")
        for mof_id, x, y, s in zip(sample, b, a, seconds, strict=True):
            handle.write(f"{mof_id},{x:.5f},{y:.5f},{s:.3f}\n")
    return {
        "n": len(sample),
        "mae": float(np.abs(error).mean()),
        "max_abs": float(np.abs(error).max()),
        "bias": float(error.mean()),
        "r": float(np.corrcoef(a, b)[0, 1]),
        "same_class": float(same_class),
        "seconds_mean": float(np.mean(seconds)),
        "seconds_max": float(np.max(seconds)),
    }


def _split_group_lines(ids: list[str], labels: list[int]) -> list[str]:
    """The provenance section on split groups (near-duplicate frameworks)."""
    groups: dict[str, list[int]] = {}
    for position, mof_id in enumerate(ids):
        groups.setdefault(split_group(mof_id), []).append(position)
    families = {key: members for key, members in groups.items() if len(members) > 1}
    mixed = [key for key, members in families.items() if len({labels[m] for m in members}) > 1]
    largest = sorted(families.items(), key=lambda item: (-len(item[1]), item[0]))[:5]
    return [
        "## Split groups (near-duplicate frameworks)",
        "",
        "CoRE MOF holds several determinations of one compound under CSD refcodes that share "
        "their first six letters (MAGVOG04, MAGVOG20, MAGVOG23...), and several structures of "
        "one article under one supplement-file name. Such near-duplicates must not sit on both "
        "sides of a split. `andersonn_lab.datasets.mofs.split_group` keys each MOF by its "
        "six-letter refcode stem (ids that are not CSD refcodes: the text before the first "
        "underscore), and `load_task` hands these keys to "
        "`andersonn_lab.datasets.tasks.stratified_split`, which puts each group whole into "
        "train, validation or test (within the class of its first member, by a seeded hash of "
        "the key). `andersonn-lab bench accuracy` and every recipe use these splits "
        "(`tests/test_framework.py` checks that no family straddles a split, seeds 0-4).",
        "",
        f"- {len(ids)} MOFs form {len(groups)} groups; {len(families)} groups hold more than "
        f"one MOF ({sum(len(m) for m in families.values())} MOFs), the largest "
        + ", ".join(f"{key} ({len(members)})" for key, members in largest)
        + ".",
        f"- Groups whose members carry different labels: {len(mixed)}"
        + (f" ({', '.join(sorted(mixed))})." if mixed else "."),
    ]


def _write_provenance(path: Path, **facts) -> None:
    counts = np.bincount(facts["labels"], minlength=len(CLASS_NAMES))
    lines = [
        "# MOF pore-size data: provenance",
        "",
        "Written by `andersonn_lab.datasets.mofs.build` (`andersonn-lab data build mofs`); "
        "every number below comes from that run.",
        "",
        "## Source",
        "",
        "- CoRE MOF 2019, all-solvent-removed (ASR) set, from the `CoRE-MOF` Python package "
        "(version 2019.1; files `CoRE_MOF/data/2019-ASR.csv` and `2019-ASR.tar.xz`).",
        "- Chung, Y. G. et al., *Advances, Updates, and Analytics for the Computation-Ready, "
        "Experimental Metal-Organic Framework Database: CoRE MOF 2019*, J. Chem. Eng. Data 64, "
        "5985-5998 (2019), doi:10.1021/acs.jced.9b00835.",
        "- Data licence: CC BY 4.0 (package code: MIT). Labels use the CSV's Zeo++ `LCD`; "
        "`PLD` and `AV_VF` (void fraction) are kept in `info`.",
        "",
        "## Selection",
        "",
        f"- {facts['n_rows']} rows in `2019-ASR.csv`.",
    ]
    for reason, count in facts["excluded"].items():
        lines.append(f"- Excluded by criterion, {reason}: {count}.")
    lines += [
        "- Eligible per class (before sampling): "
        + ", ".join(
            f"{name}: {len(m)}" for name, m in zip(CLASS_NAMES, facts["by_class"], strict=True)
        )
        + ".",
        f"- Classes by CoRE Zeo++ LCD: < {LCD_EDGES[0]} Å, {LCD_EDGES[0]}-{LCD_EDGES[1]} Å "
        f"(lower edge inclusive), >= {LCD_EDGES[1]} Å.",
        f"- Class-balanced sample: {facts['n_per_class']} per class drawn without replacement "
        f"with `numpy.random.default_rng({facts['seed']})` from the sorted eligible ids "
        "(balanced on purpose, so class frequencies do not reflect CoRE MOF's).",
        f"- Shipped: {len(facts['selected'])} MOFs, "
        + ", ".join(f"{name}: {c}" for name, c in zip(CLASS_NAMES, counts, strict=True))
        + f"; at most {facts['max_atoms']} atoms per cell.",
        f"- Structures with two atoms closer than {MIN_DISTANCE} Å (periodic) are skipped as "
        "broken before sampling; they are listed under *Skipped entries*.",
        "",
        "## Storage",
        "",
        f"- `mofs.npz` ({facts['size_mb']:.2f} MB): ids, labels, lcd, pld, void_fraction, "
        "cell matrices (ase `cellpar_to_cell` convention), atomic numbers and fractional "
        "coordinates as written in the CIFs, concatenated with per-MOF atom counts.",
        f"- CIFs read with the package's own P1 reader "
        f"(`andersonn_lab.datasets.mofs.parse_p1_cif`): {facts['n_parsed']} files in "
        f"{facts['parse_seconds']:.1f} s including decompression "
        f"({facts['parse_seconds'] / max(facts['n_parsed'], 1) * 1e3:.1f} ms per file).",
        f"- Reader check: {facts['verification']['summary']}.",
        "",
        "## Skipped entries",
        "",
    ]
    if facts["skipped"]:
        lines.append("| id | reason |")
        lines.append("|---|---|")
        lines += [f"| {mof_id} | {reason} |" for mof_id, reason in sorted(facts["skipped"])]
    else:
        lines.append("None: every candidate CIF was read.")
    lines += ["", *_split_group_lines(facts["selected"], facts["labels"])]
    lines += ["", "## Largest cavity diameter from our own code", ""]
    agreement = facts["agreement"]
    if agreement is None:
        lines.append("Not measured in this build (n_lcd=0).")
    else:
        lines += [
            "`andersonn_lab.structures.pores.largest_cavity_diameter` (CCDC radii as in Zeo++'s "
            "default table, 0.4 Å grid + SLSQP refinement) against CoRE's Zeo++ LCD on a "
            f"seeded sample of {agreement['n']} shipped MOFs (per-MOF values in "
            "`lcd_agreement.csv`):",
            "",
            f"- MAE {agreement['mae']:.3f} Å, max |error| {agreement['max_abs']:.3f} Å, "
            f"mean error {agreement['bias']:+.3f} Å, Pearson r {agreement['r']:.5f}.",
            f"- Same pore-size class as CoRE: {100 * agreement['same_class']:.1f} %.",
            f"- Time per MOF: {agreement['seconds_mean']:.2f} s mean, "
            f"{agreement['seconds_max']:.2f} s max (one CPU thread).",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
