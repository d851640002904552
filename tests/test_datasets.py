"""Task datasets: loading, splits, image cache, the MOF data and the build dispatcher.

The full-task tests use the default image cache (``$ANDERSONN_LAB_CACHE`` or
``~/.cache/andersonn_lab``), so only the very first run pays for building the images; the
cache and split mechanics are tested on a small MOF set with a temporary cache.
"""

from __future__ import annotations

import argparse
import io
import time
import warnings

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import write

from andersonn_lab.datasets import DATA_DIR, TASKS, Entry, TaskDataset, load_task
from andersonn_lab.datasets import build as build_module
from andersonn_lab.datasets.mofs import (
    CLASS_NAMES,
    DATA_FILE,
    CifError,
    label_for_lcd,
    load_entries,
    parse_p1_cif,
    save_entries,
    split_group,
)
from andersonn_lab.datasets.tasks import default_cache_dir, stratified_split
from andersonn_lab.structures import ImageOverflowWarning, StructureError, from_atoms

MOF_DIR = DATA_DIR / "mofs"


def _require(name: str) -> None:
    folder = DATA_DIR / name
    if not folder.is_dir() or not any(p.suffix in (".csv", ".npz") for p in folder.iterdir()):
        pytest.skip(f"no data files for task {name!r} in {folder}")


@pytest.fixture(scope="module")
def small_mofs(tmp_path_factory) -> object:
    """Ten small MOFs per class from the shipped set, in a folder of their own.

    No two share a split group (refcode family), so the group-aware split is exactly 7/2/1
    per class; groups are tested in ``tests/test_framework.py``.
    """
    if not (MOF_DIR / DATA_FILE).is_file():
        pytest.skip(f"{MOF_DIR / DATA_FILE} is absent; run `andersonn-lab data build mofs`")
    entries = sorted(load_entries(MOF_DIR), key=lambda e: len(e.structure))
    picked, groups = [], set()
    for label in range(3):
        members = (e for e in entries if e.label == label and split_group(e.id) not in groups)
        for entry in members:
            if len(picked) == 10 * (label + 1):
                break
            if _graph_ok(entry):
                picked.append(entry)
                groups.add(split_group(entry.id))
    folder = tmp_path_factory.mktemp("small_mofs")
    save_entries(picked, folder)
    return folder


def _graph_ok(entry: Entry) -> bool:
    try:
        from_atoms(entry.structure)
    except StructureError:
        return False
    return True


def _quiet_load(*args, **kwargs) -> TaskDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImageOverflowWarning)
        return load_task(*args, **kwargs)


@pytest.mark.parametrize("name", TASKS)
def test_task_loads(name: str) -> None:
    _require(name)
    task = _quiet_load(name, cache_dir=default_cache_dir())
    n = len(task)
    assert n > 0 and len(task.ids) == n and len(task.entries) == n
    assert task.images.shape[0] == n and task.images.shape[-2:] == (32, 32)
    assert task.images.dtype == torch.float32
    image, label = task[0]
    assert image.shape == task.images.shape[1:] and isinstance(label, int)
    assert task.labels.dtype == torch.long
    assert 0 <= int(task.labels.min()) and int(task.labels.max()) < len(task.class_names)
    assert [task.id_to_index[i] for i in task.ids] == list(range(n))
    parts = [set(task.split[s].tolist()) for s in ("train", "val", "test")]
    assert set.union(*parts) == set(range(n))
    assert sum(len(p) for p in parts) == n
    assert abs(len(parts[0]) / n - 0.70) < 0.05
    balance = task.class_balance()
    print(f"{name}: {n} entries, balance {balance}, skipped {len(task.skipped)}")
    assert list(balance) == list(task.class_names) and sum(balance.values()) == n
    assert task.graph(0).number_of_nodes() > 0
    assert len(task.subset("val")) == len(parts[1])


def test_unknown_task_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="drugs, mofs, crystals"):
        load_task("proteins")


def test_second_load_is_cached_and_fast(small_mofs, tmp_path) -> None:
    t0 = time.perf_counter()
    first = _quiet_load("mofs", data_dir=small_mofs, cache_dir=tmp_path)
    first_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    second = _quiet_load("mofs", data_dir=small_mofs, cache_dir=tmp_path)
    second_seconds = time.perf_counter() - t0
    print(f"small mofs: first load {first_seconds:.2f} s, second {second_seconds:.2f} s")
    assert not first.from_cache and second.from_cache
    assert second_seconds < 2.0 and second_seconds < first_seconds
    assert torch.equal(first.images, second.images) and first.ids == second.ids
    other = _quiet_load("mofs", data_dir=small_mofs, cache_dir=tmp_path, image_size=16)
    assert not other.from_cache and other.images.shape[-1] == 16
    scaled = _quiet_load(
        "mofs", data_dir=small_mofs, cache_dir=tmp_path, graph_options={"cutoff_scale": 1.1}
    )
    assert not scaled.from_cache and scaled.graph_options == {"cutoff_scale": 1.1}


def test_corrupt_cache_is_rebuilt(small_mofs, tmp_path) -> None:
    good = _quiet_load("mofs", data_dir=small_mofs, cache_dir=tmp_path)
    (cache_file,) = tmp_path.glob("mofs-*.pt")
    cache_file.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="corrupt image cache"):
        rebuilt = _quiet_load("mofs", data_dir=small_mofs, cache_dir=tmp_path)
    assert not rebuilt.from_cache and torch.equal(rebuilt.images, good.images)
    assert _quiet_load("mofs", data_dir=small_mofs, cache_dir=tmp_path).from_cache


def test_split_is_seeded_stratified_and_stable(small_mofs, tmp_path) -> None:
    a = _quiet_load("mofs", data_dir=small_mofs, cache_dir=tmp_path, split_seed=0)
    b = _quiet_load("mofs", data_dir=small_mofs, cache_dir=tmp_path, split_seed=0)
    c = _quiet_load("mofs", data_dir=small_mofs, cache_dir=tmp_path, split_seed=1)
    for name in ("train", "val", "test"):
        assert torch.equal(a.split[name], b.split[name])
    assert not torch.equal(a.split["train"], c.split["train"])
    for name, expected in (("train", 7), ("val", 2), ("test", 1)):
        counts = torch.bincount(a.labels[a.split[name]], minlength=3).tolist()
        assert counts == [expected] * 3, (name, counts)
    # an entry's split does not depend on the order of the data
    ids, labels = a.ids, a.labels.tolist()
    order = list(reversed(range(len(ids))))
    groups = [a.groups[i] for i in order]
    shuffled = stratified_split([ids[i] for i in order], [labels[i] for i in order], 0, groups)
    back = {ids[order[p]] for p in shuffled["test"].tolist()}
    assert back == {ids[p] for p in a.split["test"].tolist()}


def test_failed_structures_are_skipped_with_one_warning(small_mofs, tmp_path) -> None:
    entries = load_entries(small_mofs)
    lonely = Atoms("Xe", positions=[[0, 0, 0]], cell=np.eye(3) * 30.0, pbc=True)
    info = {"lcd": 20.0, "pld": 20.0, "void_fraction": 0.99}
    folder = tmp_path / "data"
    save_entries([*entries, Entry("LONELY_ATOM", 2, lonely, info)], folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = load_task("mofs", data_dir=folder, cache_dir=tmp_path / "cache")
    skip_warnings = [w for w in caught if "skipped" in str(w.message)]
    assert len(skip_warnings) == 1 and "LONELY_ATOM" in str(skip_warnings[0].message)
    assert [s[0] for s in task.skipped] == ["LONELY_ATOM"] and len(task) == len(entries)
    crop_warnings = [w for w in caught if issubclass(w.category, ImageOverflowWarning)]
    assert len(crop_warnings) <= 1


def test_mof_entries_are_periodic_with_core_values() -> None:
    if not (MOF_DIR / DATA_FILE).is_file():
        pytest.skip(f"{MOF_DIR / DATA_FILE} is absent")
    entries = load_entries(MOF_DIR)
    assert len({e.id for e in entries}) == len(entries)
    for entry in entries[:: max(1, len(entries) // 50)]:
        assert isinstance(entry.structure, Atoms) and entry.structure.pbc.all()
        assert 0 < len(entry.structure) <= 200
        assert entry.label == label_for_lcd(entry.info["lcd"])
        assert {"lcd", "pld", "void_fraction"} <= set(entry.info)
    assert (MOF_DIR / "PROVENANCE.md").is_file()


def test_p1_reader_matches_ase() -> None:
    atoms = Atoms(
        "CuO2H",
        scaled_positions=[[0.1, 0.2, 0.3], [0.5, 0.5, 0.5], [0.9, 0.05, 0.7], [0.3, 0.8, 0.1]],
        cell=[[7.1, 0, 0], [1.3, 8.2, 0], [0.4, -0.9, 9.3]],
        pbc=True,
    )
    buffer = io.BytesIO()
    write(buffer, atoms, format="cif")
    parsed = parse_p1_cif(buffer.getvalue().decode()).to_atoms()
    assert parsed.get_chemical_symbols() == atoms.get_chemical_symbols()
    assert np.allclose(parsed.cell.cellpar(), atoms.cell.cellpar(), atol=1e-4)
    assert np.allclose(parsed.get_scaled_positions(), atoms.get_scaled_positions(), atol=1e-6)


def test_p1_reader_rejects_what_it_cannot_read() -> None:
    head = "data_x\n" + "".join(
        f"_cell_{k} {v}\n"
        for k, v in zip(
            ("length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma"),
            (5, 5, 5, 90, 90, 90),
            strict=True,
        )
    )
    sites = "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
    with pytest.raises(CifError, match="not P1"):
        parse_p1_cif(head + "loop_\n_symmetry_equiv_pos_as_xyz\n'x,y,z'\n'-x,-y,-z'\n" + sites)
    with pytest.raises(CifError, match="partial occupancy"):
        parse_p1_cif(
            head + sites.replace("_label\n", "_label\n_atom_site_occupancy\n") + "C1 0.5 0 0 0\n"
        )
    with pytest.raises(CifError, match="unknown element"):
        parse_p1_cif(head + sites + "Qq1 0 0 0\n")
    with pytest.raises(CifError, match="cell"):
        parse_p1_cif("data_x\n" + sites + "C1 0 0 0\n")


def test_lcd_classes() -> None:
    assert [label_for_lcd(x) for x in (0.0, 4.999, 5.0, 6.999, 7.0, 30.0)] == [0, 0, 1, 1, 2, 2]
    assert len(CLASS_NAMES) == 3
    with pytest.raises(ValueError):
        label_for_lcd(float("nan"))


def test_build_dispatcher_arguments_and_errors() -> None:
    parser = argparse.ArgumentParser()
    build_module.add_arguments(parser)
    args = parser.parse_args(["mofs", "--limit", "12"])
    assert args.task == "mofs" and args.limit == 12
    with pytest.raises(SystemExit):
        parser.parse_args(["proteins"])
    with pytest.raises(ValueError, match="unknown task"):
        build_module.build("proteins")
    with pytest.raises(ValueError, match="does not take"):
        build_module.build("mofs", colour="blue")
    bad = parser.parse_args(["mofs", "--limit", "0"])
    assert build_module.run(bad) == 2
