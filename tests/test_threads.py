"""The thread policy (train/threads.py): one thread for small models, every core for large
ones, an override, and the caller's setting restored."""

from __future__ import annotations

import numpy as np
import torch

import rnnkit
from rnnkit.config import ModelConfig
from rnnkit.train.threads import (
    SERIAL_WORK,
    cores,
    most_threads,
    step_work,
    thread_count,
    threads_for,
)


def test_small_models_get_one_thread_and_large_ones_every_core() -> None:
    small = ModelConfig(hidden_size=32, window=8)
    large = ModelConfig(hidden_size=128, window=8)
    assert step_work(small, 64) == 64 * 4 * 32 * 33 < SERIAL_WORK
    assert step_work(large, 64) >= SERIAL_WORK
    assert threads_for(small, 64) == 1 and threads_for(large, 64) == most_threads()
    assert threads_for(large, 64, asked=1) == 1  # --threads wins
    # an ensemble's members count together, and layers above the first add their work
    assert step_work(ModelConfig(hidden_size=16, window=8, ensemble=8), 64) >= SERIAL_WORK
    assert step_work(ModelConfig(hidden_size=32, num_layers=2, window=8), 64) > step_work(
        small, 64)


def test_omp_num_threads_caps_every_core(monkeypatch) -> None:
    large = ModelConfig(hidden_size=128, window=8)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert most_threads() == 1 and threads_for(large, 64) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "64")  # a cap above the cores gives the cores
    assert most_threads() == cores()
    for junk in ("", "0", "two"):  # unset or unusable: every core
        monkeypatch.setenv("OMP_NUM_THREADS", junk)
        assert most_threads() == cores()


def test_thread_count_restores_the_callers_setting() -> None:
    before = torch.get_num_threads()
    with thread_count(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_fit_records_and_restores_its_threads() -> None:
    y = np.sin(np.arange(300) / 5)
    before = torch.get_num_threads()
    run = rnnkit.fit(y, quiet=True, epochs=1, hidden_size=8, window=8)
    assert run.config["training"]["threads"] == 1 and torch.get_num_threads() == before
    run = rnnkit.fit(y, quiet=True, epochs=1, hidden_size=8, window=8, threads=2)
    assert run.config["training"]["threads"] == 2 and torch.get_num_threads() == before
