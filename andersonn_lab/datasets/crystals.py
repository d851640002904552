"""Curated crystals labelled metal / semiconductor / insulator by their experimental band gap.

The table ``data/crystals/crystals.csv`` lists known crystals with experimental lattice
constants and experimental band gaps, each value with a short reference key that resolves in
``data/crystals/references.csv``. Every structure is built from its row alone: either an
:func:`ase.build.bulk` prototype (``builder = bulk``) or a space group with a compact Wyckoff
basis through :func:`ase.spacegroup.crystal` (``builder = spacegroup``, primitive cell).

Labels follow the gap: ``gap_ev == 0`` is a metal, ``0 < gap_ev < 3.0`` a semiconductor and
``gap_ev >= 3.0`` an insulator (:data:`GAP_CUTOFF_EV`).

Examples
--------
>>> from andersonn_lab.datasets.crystals import CLASS_NAMES, load_entries
>>> entries = load_entries()
>>> nacl = next(e for e in entries if e.id == "NaCl-B1")
>>> CLASS_NAMES[nacl.label], nacl.info["gap_ev"]
('insulator', 8.5)
"""

from __future__ import annotations

import csv
import math
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.formula import Formula
from ase.neighborlist import natural_cutoffs, neighbor_list
from ase.spacegroup import Spacegroup, crystal

from andersonn_lab.datasets.entry import DATA_DIR, Entry
from andersonn_lab.structures.crystals import density_g_cm3

__all__ = [
    "BULK_PROTOTYPES",
    "CLASS_NAMES",
    "CRYSTALS_DIR",
    "GAP_CUTOFF_EV",
    "MIN_DISTANCE_A",
    "NEIGHBOUR_MULT",
    "build",
    "build_atoms",
    "check_structure",
    "density_g_cm3",
    "label_for_gap",
    "load_entries",
    "read_references",
    "read_table",
    "split_group",
    "split_groups",
    "validate_row",
]

CLASS_NAMES: tuple[str, ...] = ("metal", "semiconductor", "insulator")
"""Class names; ``Entry.label`` indexes this tuple."""

GAP_CUTOFF_EV: float = 3.0
"""Semiconductor / insulator split: ``gap < 3.0`` semiconductor, ``gap >= 3.0`` insulator."""

MIN_DISTANCE_A: float = 1.0
"""Smallest allowed interatomic distance (periodic images included); the table has no H."""

NEIGHBOUR_MULT: float = 1.2
"""Every atom needs a neighbour within ``natural_cutoffs`` times this factor."""

BOUNDARY_WINDOW_EV: float = 0.25
"""Entries whose gap lies this close to :data:`GAP_CUTOFF_EV` are listed in the provenance."""

CRYSTALS_DIR: Path = DATA_DIR / "crystals"
"""Folder holding ``crystals.csv``, ``references.csv`` and ``PROVENANCE.md``."""

TABLE_FILE = "crystals.csv"
REFERENCES_FILE = "references.csv"
PROVENANCE_FILE = "PROVENANCE.md"

BULK_PROTOTYPES: frozenset[str] = frozenset(
    {
        "fcc",
        "bcc",
        "hcp",
        "diamond",
        "zincblende",
        "rocksalt",
        "cesiumchloride",
        "fluorite",
        "wurtzite",
    }
)
"""Values of ``prototype`` accepted with ``builder = bulk`` (``ase.build.bulk`` names)."""

COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "formula",
    "class",
    "gap_ev",
    "gap_type",
    "builder",
    "prototype",
    "symbols",
    "spacegroup",
    "setting",
    "a",
    "b",
    "c",
    "alpha",
    "beta",
    "gamma",
    "u",
    "basis",
    "lattice_ref",
    "gap_ref",
    "approx",
    "notes",
)
"""Columns of ``crystals.csv``, in order."""

GAP_TYPES: frozenset[str] = frozenset(
    {"metal", "direct", "indirect", "charge-transfer", "Mott-Hubbard"}
)
APPROX_FIELDS: frozenset[str] = frozenset({"gap", "lattice", "positions"})

_BEGIN = "<!-- BEGIN COMPUTED (written by andersonn_lab.datasets.crystals.build) -->"
_END = "<!-- END COMPUTED -->"


def label_for_gap(gap_ev: float) -> int:
    """Return the class index of a band gap.

    Parameters
    ----------
    gap_ev:
        Experimental band gap in eV; 0 for a metal (or semimetal).

    Returns
    -------
    int
        0 (metal) if ``gap_ev == 0``, 1 (semiconductor) if ``gap_ev < GAP_CUTOFF_EV``,
        otherwise 2 (insulator).

    Examples
    --------
    >>> [CLASS_NAMES[label_for_gap(g)] for g in (0.0, 1.12, 3.0, 8.5)]
    ['metal', 'semiconductor', 'insulator', 'insulator']
    """
    if not math.isfinite(gap_ev) or gap_ev < 0:
        raise ValueError(f"band gap must be a finite number >= 0, got {gap_ev!r}")
    if gap_ev == 0:
        return 0
    return 1 if gap_ev < GAP_CUTOFF_EV else 2


def read_table(data_dir: Path | str = CRYSTALS_DIR) -> list[dict[str, str]]:
    """Read ``crystals.csv`` as a list of rows (strings, surrounding spaces stripped).

    Examples
    --------
    >>> rows = read_table()
    >>> rows[0]["id"], rows[0]["prototype"]
    ('Al-fcc', 'fcc')
    """
    path = Path(data_dir) / TABLE_FILE
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames} differ from {list(COLUMNS)}")
        return [{k: (v or "").strip() for k, v in row.items()} for row in reader]


def read_references(data_dir: Path | str = CRYSTALS_DIR) -> dict[str, str]:
    """Read ``references.csv`` into ``{key: full citation}``.

    Examples
    --------
    >>> read_references()["MADELUNG2004"][:11]
    'O. Madelung'
    """
    path = Path(data_dir) / REFERENCES_FILE
    with path.open(newline="", encoding="utf-8") as handle:
        refs: dict[str, str] = {}
        for row in csv.DictReader(handle):
            key = row["key"].strip()
            if key in refs:
                raise ValueError(f"{path}: duplicate reference key {key!r}")
            refs[key] = row["citation"].strip()
    return refs


def _float(row: Mapping[str, str], key: str, default: float | None = None) -> float:
    text = row.get(key, "")
    if text == "":
        if default is None:
            raise ValueError(f"{row.get('id', '?')}: column {key!r} is empty")
        return default
    return float(text)


def _parse_basis(text: str) -> tuple[list[str], list[tuple[float, float, float]]]:
    """Parse ``"Ti 0 0 0; O 0.3048 0.3048 0"`` (``1/3`` allowed) into symbols and positions."""
    symbols: list[str] = []
    positions: list[tuple[float, float, float]] = []
    for site in text.split(";"):
        parts = site.split()
        if len(parts) != 4:
            raise ValueError(f"basis site {site.strip()!r} is not 'Symbol x y z'")
        symbols.append(parts[0])
        x, y, z = (float(Fraction(p)) for p in parts[1:])
        positions.append((x, y, z))
    return symbols, positions


def build_atoms(row: Mapping[str, str]) -> Atoms:
    """Build the structure of one table row.

    ``builder = bulk`` calls ``ase.build.bulk(symbols, prototype, a=a, c=c, u=u)`` (primitive
    cell). ``builder = spacegroup`` calls ``ase.spacegroup.crystal`` with the Wyckoff basis
    ``"El x y z; El x y z"``, the space group number and setting, the cell parameters
    ``a b c alpha beta gamma`` (``b``/``c`` default to ``a``, angles to 90); centred cells are
    reduced to the primitive cell. Coordinates may be written as fractions (``1/3``).

    Parameters
    ----------
    row:
        A row of ``crystals.csv`` as strings (see :func:`read_table`).

    Returns
    -------
    ase.Atoms
        Periodic structure (``pbc=True``) with the experimental lattice constants.

    Examples
    --------
    >>> row = {"id": "TiO2-rutile", "builder": "spacegroup", "spacegroup": "136",
    ...        "setting": "1", "a": "4.5937", "c": "2.9587", "gamma": "90",
    ...        "basis": "Ti 0 0 0; O 0.3048 0.3048 0"}
    >>> build_atoms(row).get_chemical_formula()
    'O4Ti2'
    """
    builder = row.get("builder", "")
    if builder == "bulk":
        prototype = row.get("prototype", "")
        if prototype not in BULK_PROTOTYPES:
            raise ValueError(f"{row.get('id')}: unknown bulk prototype {prototype!r}")
        kwargs: dict[str, float] = {"a": _float(row, "a")}
        if prototype in ("hcp", "wurtzite"):
            kwargs["c"] = _float(row, "c")
        if prototype == "wurtzite" and row.get("u", ""):
            kwargs["u"] = _float(row, "u")
        atoms = bulk(row["symbols"], prototype, **kwargs)
    elif builder == "spacegroup":
        symbols, positions = _parse_basis(row.get("basis", ""))
        a = _float(row, "a")
        cellpar = [
            a,
            _float(row, "b", a),
            _float(row, "c", a),
            _float(row, "alpha", 90.0),
            _float(row, "beta", 90.0),
            _float(row, "gamma", 90.0),
        ]
        spacegroup = Spacegroup(int(row["spacegroup"]), int(row.get("setting") or 1))
        kwargs = {"basis": positions, "spacegroup": spacegroup, "cellpar": cellpar}
        atoms = crystal(symbols, onduplicates="error", **kwargs)
        centring = len(spacegroup.subtrans)
        if centring > 1:
            # Reduce centred cells to the primitive cell, and make sure no atom got lost on
            # the way (atoms at fractional coordinates close to 1 can be dropped).
            primitive = crystal(symbols, primitive_cell=True, **kwargs)
            if len(primitive) * centring != len(atoms):
                raise ValueError(
                    f"{row.get('id')}: primitive cell has {len(primitive)} atoms, expected "
                    f"{len(atoms)} / {centring}"
                )
            atoms = primitive
    else:
        raise ValueError(
            f"{row.get('id')}: builder must be 'bulk' or 'spacegroup', not {builder!r}"
        )
    atoms.pbc = True
    atoms.wrap()
    return atoms


@dataclass
class StructureCheck:
    """Outcome of :func:`check_structure`."""

    min_distance: float
    """Shortest interatomic distance in angstrom, periodic images included."""
    isolated: list[int] = field(default_factory=list)
    """Indices of atoms without a neighbour within ``NEIGHBOUR_MULT`` x natural cutoffs."""

    @property
    def overlapping(self) -> bool:
        """True if two atoms are closer than :data:`MIN_DISTANCE_A`."""
        return self.min_distance <= MIN_DISTANCE_A


def check_structure(atoms: Atoms) -> StructureCheck:
    """Check a structure for overlapping and isolated atoms.

    Examples
    --------
    >>> check = check_structure(bulk("Si", "diamond", a=5.431))
    >>> round(check.min_distance, 3), check.isolated, check.overlapping
    (2.352, [], False)
    """
    cutoffs = natural_cutoffs(atoms, mult=NEIGHBOUR_MULT)
    i, d = neighbor_list("id", atoms, cutoffs, self_interaction=False)
    isolated = sorted(set(range(len(atoms))) - set(i.tolist()))
    # Every pair closer than MIN_DISTANCE_A, whatever the elements, plus the bonded pairs.
    d_close = neighbor_list("d", atoms, MIN_DISTANCE_A, self_interaction=False)
    d_all = np.concatenate([d, d_close])
    if isolated:
        # Isolated atoms: look further out so that the reported minimum is the true one.
        radius = 2.0 * max(cutoffs)
        d_all = np.concatenate([d_all, neighbor_list("d", atoms, radius, self_interaction=False)])
    min_distance = float(d_all.min()) if len(d_all) else math.inf
    return StructureCheck(min_distance=min_distance, isolated=isolated)


def _composition(formula: str) -> dict[str, float]:
    """Element fractions of a formula, so that ``NaCl`` and ``Na4Cl4`` compare equal."""
    counts = Formula(formula).count()
    total = sum(counts.values())
    return {el: n / total for el, n in counts.items()}


def validate_row(row: Mapping[str, str], references: Mapping[str, str]) -> list[str]:
    """Return the problems of a row (empty if it is valid); does not build the structure.

    Examples
    --------
    >>> row = dict(read_table()[0])
    >>> validate_row(row, read_references())
    []
    >>> row["class"] = "insulator"
    >>> validate_row(row, read_references())
    ["class 'insulator' does not follow the gap rule (gap 0.0 eV -> 'metal')"]
    """
    problems: list[str] = []
    if not row.get("id"):
        problems.append("empty id")
    for key in ("name", "formula", "lattice_ref", "gap_ref"):
        if not row.get(key):
            problems.append(f"empty {key}")
    try:
        gap = float(row.get("gap_ev", ""))
        expected = CLASS_NAMES[label_for_gap(gap)]
    except ValueError as exc:
        problems.append(f"bad gap_ev {row.get('gap_ev')!r}: {exc}")
    else:
        if row.get("class") != expected:
            problems.append(
                f"class {row.get('class')!r} does not follow the gap rule "
                f"(gap {gap} eV -> {expected!r})"
            )
        gap_type = row.get("gap_type", "")
        if gap_type not in GAP_TYPES:
            problems.append(f"unknown gap_type {gap_type!r}")
        elif (gap_type == "metal") != (gap == 0):
            problems.append(f"gap_type {gap_type!r} inconsistent with gap {gap} eV")
    for key in ("lattice_ref", "gap_ref"):
        for ref in filter(None, (r.strip() for r in row.get(key, "").split(";"))):
            if ref not in references:
                problems.append(f"{key} {ref!r} not in {REFERENCES_FILE}")
    approx = {a.strip() for a in row.get("approx", "").split(";") if a.strip()}
    if approx - APPROX_FIELDS:
        problems.append(f"unknown approx fields {sorted(approx - APPROX_FIELDS)}")
    try:
        _composition(row.get("formula", ""))
    except ValueError as exc:
        problems.append(f"bad formula {row.get('formula')!r}: {exc}")
    return problems


def _check_row(
    row: Mapping[str, str], references: Mapping[str, str], full: bool = True
) -> tuple[Atoms | None, list[str], list[str]]:
    """Validate, build and check one row: (atoms or None, problems, warnings)."""
    problems = validate_row(row, references)
    if problems:
        return None, problems, []
    try:
        atoms = build_atoms(row)
    except Exception as exc:  # noqa: BLE001 - any failure to build is reported, not raised
        return None, [f"structure does not build: {exc}"], []
    want = _composition(row["formula"])
    have = _composition(atoms.get_chemical_formula())
    if want.keys() != have.keys() or any(abs(want[k] - have[k]) > 1e-9 for k in want):
        return None, [f"built {atoms.get_chemical_formula()} does not match {row['formula']}"], []
    warnings: list[str] = []
    if full:
        check = check_structure(atoms)
        if check.overlapping:
            return None, [f"overlapping atoms: min distance {check.min_distance:.3f} A"], []
        if check.isolated:
            symbols = atoms.get_chemical_symbols()
            names = ", ".join(f"{symbols[i]}{i}" for i in check.isolated)
            warnings.append(
                f"atoms without a neighbour within {NEIGHBOUR_MULT} x natural cutoffs: {names}"
            )
    return atoms, [], warnings


def _entry(row: Mapping[str, str], atoms: Atoms) -> Entry:
    gap = float(row["gap_ev"])
    info = {
        "formula": row["formula"],
        "name": row["name"],
        "gap_ev": gap,
        "gap_type": row["gap_type"],
        "gap_ref": row["gap_ref"],
        "lattice_ref": row["lattice_ref"],
        "class_name": row["class"],
        "prototype": row["prototype"],
        "spacegroup": int(row["spacegroup"]) if row["spacegroup"] else None,
        "approx": [a.strip() for a in row["approx"].split(";") if a.strip()],
        "notes": row["notes"],
    }
    return Entry(id=row["id"], label=label_for_gap(gap), structure=atoms, info=info)


def load_entries(data_dir: Path | str = CRYSTALS_DIR) -> list[Entry]:
    """Load the curated crystals as :class:`Entry` objects.

    Rows that fail validation or do not build are left out (``build`` lists them in
    ``PROVENANCE.md``). ``Entry.structure`` is an :class:`ase.Atoms` with ``pbc=True``;
    ``Entry.info`` holds ``formula``, ``name``, ``gap_ev``, ``gap_type``, ``gap_ref``,
    ``lattice_ref``, ``class_name``, ``prototype``, ``spacegroup``, ``approx`` and ``notes``.

    Parameters
    ----------
    data_dir:
        Folder with ``crystals.csv`` and ``references.csv``.

    Examples
    --------
    >>> entries = load_entries()
    >>> si = next(e for e in entries if e.id == "Si-diamond")
    >>> CLASS_NAMES[si.label], si.info["gap_ev"], len(si.structure)
    ('semiconductor', 1.12, 2)
    """
    references = read_references(data_dir)
    entries: list[Entry] = []
    for row in read_table(data_dir):
        atoms, problems, _ = _check_row(row, references, full=False)
        if atoms is not None and not problems:
            entries.append(_entry(row, atoms))
    return entries


def split_group(formula: str) -> str:
    """Split group of a crystal: its reduced formula, so polymorphs share one group.

    Two structures of one composition (zinc-blende and wurtzite ZnS, 3C and 4H SiC, rutile
    and anatase TiO2, cubic and hexagonal BN, diamond and graphite) are near-duplicates for
    a classifier that is shown the composition, so they always land in the same part of a
    split (:func:`~andersonn_lab.datasets.tasks.stratified_split`).

    Examples
    --------
    >>> split_group("TiO2"), split_group("Ti2O4"), split_group("SiMg2")
    ('O2Ti', 'O2Ti', 'Mg2Si')
    """
    reduced, _ = Formula(formula).reduce()
    return reduced.format("hill")


def split_groups(entries: list[Entry]) -> list[str]:
    """:func:`split_group` of each entry's formula, as ``load_task("crystals")`` uses it."""
    return [split_group(entry.info["formula"]) for entry in entries]


def _table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _computed_section(
    rows: list[dict[str, str]],
    kept: list[tuple[dict[str, str], Atoms]],
    skipped: list[tuple[str, list[str]]],
    warnings: list[tuple[str, list[str]]],
    references: Mapping[str, str],
) -> str:
    classes = Counter(r["class"] for r, _ in kept)
    n = len(kept)
    lines = [
        _BEGIN,
        "",
        "## Summary (computed)",
        "",
        f"- Rows in `{TABLE_FILE}`: {len(rows)}; structures built and kept: {n}; "
        f"skipped: {len(skipped)}.",
        f"- Distinct formulas: {len({r['formula'] for r, _ in kept})}; "
        f"distinct structure types: {len({r['prototype'] for r, _ in kept})}.",
        f"- Atoms per cell: {min(len(a) for _, a in kept)} to {max(len(a) for _, a in kept)} "
        f"(mean {np.mean([len(a) for _, a in kept]):.1f}).",
        f"- Label rule: gap = 0 -> metal; 0 < gap < {GAP_CUTOFF_EV:.1f} eV -> semiconductor; "
        f"gap >= {GAP_CUTOFF_EV:.1f} eV -> insulator.",
        "",
        "### Class balance",
        "",
    ]
    lines += _table(
        ["class", "label", "entries", "share"],
        (
            [name, i, classes[name], f"{100 * classes[name] / n:.1f} %"]
            for i, name in enumerate(CLASS_NAMES)
        ),
    )
    lines += ["", "### Structure types", ""]
    by_type: dict[str, Counter[str]] = {}
    for r, _ in kept:
        by_type.setdefault(r["prototype"], Counter())[r["class"]] += 1
    lines += _table(
        ["structure type", "builder", *CLASS_NAMES, "total"],
        (
            [
                t,
                next(r["builder"] for r, _ in kept if r["prototype"] == t),
                *(c[name] for name in CLASS_NAMES),
                sum(c.values()),
            ]
            for t, c in sorted(by_type.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        ),
    )
    gap_types = Counter(r["gap_type"] for r, _ in kept)
    lines += [
        "",
        "Gap types: " + ", ".join(f"{k} {v}" for k, v in sorted(gap_types.items())) + ".",
        "",
        f"### Entries near the cut-off (|gap - {GAP_CUTOFF_EV:.1f}| <= {BOUNDARY_WINDOW_EV} eV)",
        "",
    ]
    near = [
        (r["id"], r["gap_ev"], r["class"], r["notes"] or "-")
        for r, _ in kept
        if abs(float(r["gap_ev"]) - GAP_CUTOFF_EV) <= BOUNDARY_WINDOW_EV
    ]
    lines += _table(["id", "gap (eV)", "class", "notes"], near) if near else ["None."]
    approx = [(r["id"], r["approx"].replace(";", ", ")) for r, _ in kept if r["approx"]]
    lines += [
        "",
        f"### Values marked approximate ({len(approx)} rows)",
        "",
        "`gap`: reported experimental values scatter by more than a few percent, or the value "
        "is rounded to about 0.1 eV; `lattice`: composition-dependent or rounded lattice "
        "constant; `positions`: internal coordinates rounded or idealised (the lattice "
        "constants, hence the density, are unaffected).",
        "",
    ]
    lines += [", ".join(f"{i} ({a})" for i, a in approx) + "."] if approx else ["None."]
    used = Counter()
    for r, _ in kept:
        for key in {*r["lattice_ref"].split(";"), *r["gap_ref"].split(";")}:
            used[key.strip()] += 1
    lines += ["", "### References used (rows citing each key)", ""]
    lines += _table(
        ["key", "rows", "citation"],
        ([k, used[k], references[k]] for k in sorted(references) if used[k]),
    )
    unused = sorted(k for k in references if not used[k])
    if unused:
        lines += ["", "Unused reference keys: " + ", ".join(unused) + "."]
    lines += ["", "### Skipped rows", ""]
    lines += [f"- {i}: {'; '.join(p)}" for i, p in skipped] if skipped else ["None."]
    lines += ["", "### Structure warnings", ""]
    lines += [f"- {i}: {'; '.join(w)}" for i, w in warnings] if warnings else ["None."]
    lines += ["", _END]
    return "\n".join(lines)


def build(out_dir: Path | str = CRYSTALS_DIR) -> Path:
    """Validate the table, build and check every structure, and update ``PROVENANCE.md``.

    Each row is validated (label follows the gap rule, citations resolve, formula parses),
    built with :func:`build_atoms`, compared with its formula, and checked for overlapping
    atoms (min distance <= :data:`MIN_DISTANCE_A`) and for atoms without neighbours.
    Invalid rows are skipped and listed with their reasons. The computed part of
    ``PROVENANCE.md`` (between its ``BEGIN COMPUTED`` / ``END COMPUTED`` markers) is
    rewritten with the counts, class balance, structure types, approximate values,
    references used, skipped rows and warnings.

    Parameters
    ----------
    out_dir:
        Folder to write to. If it is not :data:`CRYSTALS_DIR`, the table, the references and
        the hand-written provenance are copied there first.

    Returns
    -------
    Path
        The folder holding the checked table, ready for :func:`load_entries`.

    Examples
    --------
    >>> import tempfile
    >>> folder = build(tempfile.mkdtemp())
    >>> (folder / "PROVENANCE.md").is_file()
    True
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() != CRYSTALS_DIR.resolve():
        for name in (TABLE_FILE, REFERENCES_FILE, PROVENANCE_FILE):
            if (CRYSTALS_DIR / name).is_file():
                shutil.copyfile(CRYSTALS_DIR / name, out / name)
    references = read_references(out)
    rows = read_table(out)
    kept: list[tuple[dict[str, str], Atoms]] = []
    skipped: list[tuple[str, list[str]]] = []
    warnings: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    for row in rows:
        if row["id"] in seen:
            skipped.append((row["id"], ["duplicate id"]))
            continue
        seen.add(row["id"])
        atoms, problems, warn = _check_row(row, references, full=True)
        if atoms is None:
            skipped.append((row["id"] or "?", problems))
            continue
        kept.append((row, atoms))
        if warn:
            warnings.append((row["id"], warn))
    if not kept:
        raise ValueError(f"no valid rows in {out / TABLE_FILE}")
    section = _computed_section(rows, kept, skipped, warnings, references)
    path = out / PROVENANCE_FILE
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Crystals: provenance\n"
    if _BEGIN in text and _END in text:
        head, rest = text.split(_BEGIN, 1)
        tail = rest.split(_END, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")
    return out
