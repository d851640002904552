"""The convergence explorer on the forward solve of a DEQ classifier."""

from __future__ import annotations

import torch

from andersonn_lab.deq import DEQClassifier
from andersonn_lab.widgets import ConvergenceExplorer


class _Images(torch.utils.data.Dataset):
    def __init__(self) -> None:
        self.images = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        self.ids = [f"s{i}" for i in range(4)]
        self.id_to_index = {name: i for i, name in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int):
        return self.images[i], 0


def test_fixed_point_problem_matches_the_layer_solve():
    torch.manual_seed(0)
    model = DEQClassifier(
        3, 2, channels=8, hidden=8, groups=4, forward_solver={"tol": 1e-7, "max_iter": 200}
    )
    images = _Images().images
    problem = model.fixed_point_problem(images, device=None)
    result = problem.solve(tol=1e-7, max_iter=200)
    with torch.no_grad():
        z_star = model.features(images)
    assert result.all_converged
    torch.testing.assert_close(result.z, z_star, rtol=1e-4, atol=1e-4)


def test_explorer_runs_a_deq_on_a_chosen_structure():
    torch.manual_seed(0)
    model = DEQClassifier(3, 2, channels=8, hidden=8, groups=4)
    explorer = ConvergenceExplorer(threaded=False, problem="cosine", dim=2)
    explorer.use_deq(model, _Images(), "s2", device=None)
    controller = explorer.controller
    assert controller.settings.problem == "custom"
    assert "s2" in controller.problem_title()
    (result,) = controller.last_results
    assert result.z.shape == (1, 8, 8, 8)
    drawn = [t for t in controller.plot_data().traces if t.role == "current"]
    assert drawn and list(drawn[0].y) == result.rel_residuals[:, 0].tolist()
