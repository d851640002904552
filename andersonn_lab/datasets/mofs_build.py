"""Rebuild the MOFs task's shipped files from CoRE MOF 2019 (build time; the ``data`` extra).

``andersonn-lab data build mofs`` runs :func:`build`. Kept apart from
:mod:`andersonn_lab.datasets.mofs`, the run-time loader, which needs no CoRE-MOF package.
"""

from __future__ import annotations

import csv
import io
import math
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from ase import Atoms

from andersonn_lab.datasets.entry import DATA_DIR, Entry
from andersonn_lab.datasets.mofs import (
    CLASS_NAMES,
    LCD_EDGES,
    MIN_DISTANCE,
    CifError,
    P1Cif,
    label_for_lcd,
    load_entries,
    parse_p1_cif,
    save_entries,
    split_group,
)


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
    n_per_class: int = 1000,
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
        "Written by `andersonn_lab.datasets.mofs_build.build` (`andersonn-lab data build mofs`); "
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
