"""Mixed precision: the fixed-point solve stays in float32 under autocast.

The GPU check of this round found ``andersonn-lab train --amp`` failing on CUDA inside the
Anderson step (a float16 iterate mixed with the float32 window). On the CPU, bfloat16
autocast shows the other half of the problem: a cell evaluated in half precision has a
residual floor above the recipes' tolerance, so the solve stalls at its cap.
"""

from __future__ import annotations

import torch

from andersonn_lab.deq import DEQClassifier


def _model() -> DEQClassifier:
    torch.manual_seed(0)
    return DEQClassifier(3, 2, channels=8, hidden=8, groups=4)


def test_solve_under_autocast_converges_like_float32() -> None:
    model, images = _model(), torch.rand(4, 3, 8, 8)
    plain = model(images)
    steps = model.deq.last_stats.forward.steps.clone()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model(images)
    stats = model.deq.last_stats.forward
    assert bool(stats.converged.all())
    assert int((stats.steps - steps).abs().max()) <= 2  # the stem runs in bfloat16
    assert mixed.dtype == torch.bfloat16  # the head still runs in half precision
    torch.testing.assert_close(mixed.float(), plain, atol=5e-2, rtol=5e-2)


def test_backward_under_autocast_gives_finite_float32_gradients() -> None:
    model, images, labels = _model(), torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 0, 1])
    loss_fn = torch.nn.CrossEntropyLoss()
    loss_fn(model(images), labels).backward()
    reference = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = loss_fn(model(images).float(), labels)
    loss.backward()
    for p, ref in zip(model.parameters(), reference, strict=True):
        assert p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
        # bfloat16 keeps about three significant digits: same direction, not the same bits
        cosine = torch.nn.functional.cosine_similarity(p.grad.flatten(), ref.flatten(), dim=0)
        assert float(cosine) > 0.95
