"""Metal-organic frameworks from CoRE MOF 2019, labelled by largest cavity diameter (LCD).

Classes (CoRE MOF 2019 Zeo++ LCD, in Å): ``0`` LCD < 5, ``1`` 5 <= LCD < 7, ``2`` LCD >= 7.

The shipped data (``data/mofs/mofs.npz``) holds a seeded, class-balanced sample of the
CoRE MOF 2019 "all solvent removed" (ASR) set: entries with ``Extension == 'clean'``, not
flagged ``DISORDER``, at most ``max_atoms`` atoms per cell, no two atoms closer than 0.5 Å.
:func:`andersonn_lab.datasets.mofs_build.build` recreates it from the ``CoRE-MOF`` package
(``pip install CoRE-MOF``); :func:`load_entries` reads it.

Examples
--------
>>> from andersonn_lab.datasets.mofs import label_for_lcd, CLASS_NAMES
>>> CLASS_NAMES[label_for_lcd(6.2)]
'medium pore (5-7 Å)'
"""

from __future__ import annotations

import math
import re
import shlex
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
