"""train() from a TrainConfig: the same run as the keyword form, checked settings."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.data import TensorDataset

from andersonn_lab.deq import DEQClassifier, TrainConfig, train


def _data():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(12, 3, 4, 4, generator=generator)
    return TensorDataset(images, torch.tensor([0, 1, 2] * 4))


def _fit(*args, **kwargs):
    torch.manual_seed(0)
    model = DEQClassifier(3, 3, channels=4, hidden=4, groups=2, pool=1)
    result = train(model, _data(), _data(), *args, **kwargs)
    return [p.detach() for p in model.parameters()], result.history


def test_config_and_keywords_train_identically():
    options = {"epochs": 2, "batch_size": 5, "lr": 3e-3, "device": "cpu", "progress": False}
    by_config = _fit(TrainConfig(**options))
    by_keywords = _fit(**options)
    overridden = _fit(TrainConfig(**{**options, "lr": 1.0}), lr=3e-3)
    for params, history in (by_keywords, overridden):
        for a, b in zip(params, by_config[0], strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert [m["train_loss"] for m in history] == [m["train_loss"] for m in by_config[1]]


def test_settings_are_checked_once_and_unknown_ones_named():
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="jacobian_penalty"):
        TrainConfig(jacobian_penalty=-1.0)
    with pytest.raises(TypeError, match="epoch"):
        train(DEQClassifier(3, 3, channels=4, hidden=4, groups=2), _data(), epoch=3)
    config = TrainConfig(jacobian_penalty=1)
    assert isinstance(config.jacobian_penalty, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3
