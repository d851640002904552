"""Classical baselines on exactly the splits of ``andersonn-lab bench accuracy``.

A DEQ's accuracy means little alone. :func:`run_baselines` scores two scikit-learn models on
the same stratified splits (same seeds, same train and test positions, the same smoke
reductions) that :func:`~andersonn_lab.deq.holdout.repeated_holdout` uses:

``"logistic-images"``
    Logistic regression (standardised inputs, L2, ``C = 1``) on the flattened images of the
    task's default recipe: what a linear model reads from the DEQ's own input.
``"forest-descriptors"``
    A random forest (300 trees; 50 in the smoke setting) on standard descriptors computed
    from the structures, not from the images (:func:`descriptors`):

    * drugs: RDKit's 2-D descriptors (:data:`rdkit.Chem.Descriptors.descList`, about 210)
      and the MMFF94 point-charge dipole of the shipped conformer (the quantity the
      ``"charges"`` images hold, see :mod:`andersonn_lab.structures.charges`);
    * MOFs: density, volume per atom, cell lengths (sorted) and angles, element fractions;
    * crystals: composition statistics in the spirit of Magpie (Ward et al., npj Comput.
      Mater. 2, 16028 (2016)): the fraction-weighted mean and the min, max and range over
      the formula of Pauling electronegativity, group, period, valence electrons, covalent
      radius and atomic number, plus the number of elements; and six numbers read from the
      default atom-bond network (:func:`~andersonn_lab.structures.environment.bonding_statistics`:
      odd electron count per formula unit, mean coordination, mean and largest
      electronegativity difference across a bond, fraction of metal-metal bonds, volume
      per atom).

Both train on the training split only and score the test split. ``andersonn-lab bench
baselines --tasks crystals --splits 10`` prints a table and writes ``baselines.json`` where
``bench accuracy`` writes ``accuracy.json``. scikit-learn comes with the ``bench`` extra.

Examples
--------
>>> result = run_baselines("crystals", [0, 1], smoke=True)  # doctest: +SKIP
>>> sorted(result)  # doctest: +SKIP
['forest-descriptors', 'logistic-images']
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .holdout import AccuracySummary, write_results

__all__ = [
    "BASELINES",
    "BaselineResult",
    "add_baseline_arguments",
    "descriptors",
    "format_baselines",
    "run_baselines",
    "run_baselines_command",
]

BASELINES: tuple[str, ...] = ("logistic-images", "forest-descriptors")
"""Names of the baseline models, in table order."""


@dataclass
class BaselineResult(AccuracySummary):
    """Test accuracies of one baseline on one task, one per split seed."""

    task: str
    model: str
    features: str
    split_seeds: list[int] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    n_test: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary with every split's score."""
        return {**asdict(self), "mean": self.mean, "std": self.std}


# ------------------------------------------------------------------------------ descriptors


def _drug_descriptors(entries: Sequence[Any]) -> tuple[np.ndarray, list[str]]:
    from rdkit import Chem, rdBase
    from rdkit.Chem import Descriptors

    from andersonn_lab.structures.charges import dipole_shares, force_field_charges

    names = [name for name, _ in Descriptors.descList]
    three_d = all("mol" in entry.info for entry in entries)
    rows = []
    with rdBase.BlockLogs():
        for entry in entries:
            mol = Chem.MolFromSmiles(entry.structure)
            values = Descriptors.CalcMolDescriptors(mol) if mol is not None else {}
            row = [float(values.get(name, np.nan)) for name in names]
            if three_d:  # the force-field dipole of the shipped conformer, as the images hold
                conformer = entry.info["mol"]
                charges, _ = force_field_charges(conformer)
                mu, _ = dipole_shares(conformer.GetConformer().GetPositions(), charges)
                row.append(float(np.linalg.norm(mu)))
            rows.append(row)
    return np.asarray(rows, dtype=float), names + (["ff_dipole_debye"] if three_d else [])


def _mof_descriptors(entries: Sequence[Any]) -> tuple[np.ndarray, list[str]]:
    from ase.data import chemical_symbols

    from andersonn_lab.structures.crystals import density_g_cm3

    elements = sorted({int(z) for e in entries for z in e.structure.numbers})
    column = {z: k for k, z in enumerate(elements)}

    names = [
        "density_g_cm3",
        "volume_per_atom",
        "a",
        "b",
        "c",
        "alpha",
        "beta",
        "gamma",
        *[f"x_{chemical_symbols[z]}" for z in elements],
    ]
    rows = []
    for entry in entries:
        atoms = entry.structure
        volume = float(abs(atoms.cell.volume))
        cellpar = atoms.cell.cellpar()
        fractions = np.zeros(len(elements))
        for z in atoms.numbers:
            fractions[column[int(z)]] += 1.0 / len(atoms)
        rows.append(
            [
                density_g_cm3(atoms),
                volume / len(atoms),
                *sorted(cellpar[:3]),
                *cellpar[3:],
                *fractions,
            ]
        )
    return np.asarray(rows, dtype=float), names


def _crystal_descriptors(entries: Sequence[Any]) -> tuple[np.ndarray, list[str]]:
    from andersonn_lab.structures.crystals import from_atoms
    from andersonn_lab.structures.elements import composition_statistics
    from andersonn_lab.structures.environment import bonding_statistics

    table = [
        {
            **composition_statistics(entry.structure.numbers),
            **bonding_statistics(from_atoms(entry.structure)),
        }
        for entry in entries
    ]
    names = list(table[0]) if table else []
    return np.asarray([[row[name] for name in names] for row in table], dtype=float), names


def descriptors(task: str, entries: Sequence[Any]) -> tuple[np.ndarray, list[str]]:
    """Standard descriptors of a task's entries, one row per entry.

    Parameters
    ----------
    task:
        ``"drugs"``, ``"mofs"`` or ``"crystals"``.
    entries:
        The task's :class:`~andersonn_lab.datasets.entry.Entry` objects (SMILES for drugs,
        :class:`ase.Atoms` otherwise).

    Returns
    -------
    features, names
        A float array ``(len(entries), n_features)`` (NaN where a value is undefined) and
        the feature names.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from andersonn_lab.datasets.entry import Entry
    >>> x, names = descriptors("crystals", [Entry("NaCl", 2, bulk("NaCl", "rocksalt", a=5.64))])
    >>> x.shape, names[0], round(float(x[0, 0]), 3)   # mean Pauling electronegativity
    ((1, 31), 'mean_electronegativity', 2.045)
    >>> names[-6:-4], float(x[0, names.index("mean_coordination")])
    (['odd_electrons', 'mean_coordination'], 6.0)
    """
    makers = {
        "drugs": _drug_descriptors,
        "mofs": _mof_descriptors,
        "crystals": _crystal_descriptors,
    }
    if task not in makers:
        raise ValueError(f"unknown task {task!r}; valid tasks are {', '.join(makers)}")
    return makers[task](entries)


# --------------------------------------------------------------------------------- models


def _logistic() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))


def _forest(seed: int, n_trees: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=n_trees, random_state=seed, n_jobs=1)


def run_baselines(
    task: str,
    split_seeds: Sequence[int],
    *,
    smoke: bool | None = None,
    models: Sequence[str] = BASELINES,
    n_trees: int | None = None,
    load_options: dict[str, Any] | None = None,
    recipe: Any = None,
    dataset: Any = None,
) -> dict[str, BaselineResult]:
    """Score the baselines of ``task`` on the splits of ``bench accuracy``.

    Parameters
    ----------
    task:
        ``"drugs"``, ``"mofs"`` or ``"crystals"``.
    split_seeds:
        Split seeds, as given to :func:`~andersonn_lab.deq.holdout.repeated_holdout`.
    smoke:
        Use the recipe's smoke setting (reduced train and test splits); None means
        :func:`~andersonn_lab.deq.recipe.smoke_mode`. The forest then has 50 trees.
    models:
        A subset of :data:`BASELINES`.
    n_trees:
        Trees of the random forest; default 300 (50 when smoke).
    load_options:
        Passed to :meth:`~andersonn_lab.deq.recipe.Recipe.load` (``cache_dir``...).
    recipe:
        The :class:`~andersonn_lab.deq.recipe.Recipe` whose images and splits to use;
        default ``default_recipe(task, smoke=smoke)``, as ``bench accuracy`` uses.
    dataset:
        A dataset already loaded with ``recipe.load()``; it is used for the seed equal to
        its ``split_seed`` instead of loading it again (notebooks).

    Returns
    -------
    dict
        ``{model: BaselineResult}``.

    Raises
    ------
    ValueError
        For an unknown task or model, or no (or repeated) split seeds.
    """
    from .recipe import default_recipe

    seeds = [int(s) for s in split_seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"give distinct split seeds, got {seeds}")
    unknown = [m for m in models if m not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; valid are {', '.join(BASELINES)}")
    if recipe is None:
        recipe = default_recipe(task, smoke=smoke)
    trees = n_trees if n_trees is not None else (50 if recipe.smoke else 300)
    features = {
        "logistic-images": f"{recipe.encoding} images {recipe.image_size}x{recipe.image_size}",
        "forest-descriptors": f"{task} descriptors",
    }
    results = {m: BaselineResult(task, m, features[m]) for m in models}
    loaded = [
        dataset
        if dataset is not None and getattr(dataset, "split_seed", None) == seed
        else recipe.load(split_seed=seed, **(load_options or {}))
        for seed in seeds
    ]
    parts = [recipe.splits(dataset) for dataset in loaded]
    # Descriptors only of the structures some split trains or tests on (smoke: a few dozen).
    needed = sorted({int(p) for train, _, test in parts for p in (*train.indices, *test.indices)})
    row_of = {p: k for k, p in enumerate(needed)}
    table = np.zeros((0, 0))
    if "forest-descriptors" in models:
        table, _ = descriptors(task, [loaded[0].entries[p] for p in needed])
        table = np.nan_to_num(table, nan=0.0, posinf=0.0, neginf=0.0)
    for seed, data, (train, _, test) in zip(seeds, loaded, parts, strict=True):
        train_at = np.asarray(train.indices, dtype=int)
        test_at = np.asarray(test.indices, dtype=int)
        labels = data.labels.numpy()
        for model in models:
            started = time.perf_counter()
            if model == "logistic-images":
                x = data.images.reshape(len(data), -1).numpy().astype(np.float64)
                x_train, x_test = x[train_at], x[test_at]
                estimator = _logistic()
            else:
                x_train = table[[row_of[int(p)] for p in train_at]]
                x_test = table[[row_of[int(p)] for p in test_at]]
                estimator = _forest(seed, trees)
            estimator.fit(x_train, labels[train_at])
            accuracy = float(np.mean(estimator.predict(x_test) == labels[test_at]))
            result = results[model]
            result.split_seeds.append(seed)
            result.accuracies.append(accuracy)
            result.n_test.append(len(test_at))
            result.seconds += time.perf_counter() - started
    return results


def format_baselines(results: Sequence[BaselineResult]) -> str:
    """A plain-text table: one row per task and baseline.

    Examples
    --------
    >>> r = BaselineResult("crystals", "logistic-images", "images", [0, 1], [0.9, 0.8], [30, 30])
    >>> print(format_baselines([r]).splitlines()[-1])
    | crystals | logistic-images | images | 2 | 0.900, 0.800 | 0.850 ± 0.071 | 0.800 – 0.900 |
    """
    lines = [
        "| task | baseline | features | splits | test accuracy per split | mean ± sd | min – max |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r.task} | {r.model} | {r.features} {r.table_cells()}")
    return "\n".join(lines)


def add_baseline_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``andersonn-lab bench baselines``."""
    parser.add_argument("--tasks", nargs="+", default=["crystals"], help="default: crystals")
    parser.add_argument("--splits", type=int, default=5, help="number of split seeds (from 0)")
    parser.add_argument(
        "--models", nargs="+", default=list(BASELINES), choices=BASELINES, help="default: both"
    )
    parser.add_argument("--trees", type=int, default=None, help="forest size (default 300)")
    parser.add_argument("--smoke", action="store_true", help="the recipes' small CI setting")
    parser.add_argument("--out", default=None, help="folder for baselines.json")


def run_baselines_command(args: argparse.Namespace) -> int:
    """``andersonn-lab bench baselines``: score the baselines, print the table, write JSON."""
    from .recipe import RECIPES

    try:
        import sklearn  # noqa: F401
    except ImportError:
        print(
            "andersonn-lab bench baselines: scikit-learn is not installed; "
            "run pip install 'andersonn_lab[bench]'",
            file=sys.stderr,
        )
        return 2
    unknown = [t for t in args.tasks if t not in RECIPES]
    if unknown or args.splits < 1:
        problem = f"unknown task(s) {unknown}" if unknown else "--splits must be at least 1"
        print(f"andersonn-lab bench baselines: {problem}", file=sys.stderr)
        return 2
    results: list[BaselineResult] = []
    for task in args.tasks:
        try:
            found = run_baselines(
                task, range(args.splits), smoke=args.smoke, models=args.models, n_trees=args.trees
            )
        except (FileNotFoundError, ImportError) as err:
            print(f"skipping {task}: {err}", file=sys.stderr)
            continue
        results.extend(found.values())
    if not results:
        print("andersonn-lab bench baselines: no task could be loaded", file=sys.stderr)
        return 2
    path = write_results(results, args, "baselines.json")
    print(format_baselines(results))
    print(f"wrote {path}")
    return 0
