"""Tariff shock: the notes' story as a regression task (REFERENCES.md item 14).

A daily price P_t (days t = 1..T) follows, with ε_t ~ N(0, 1),

    mean_reverting:  P_t = φ P_{t-1} + σ ε_t + J_t      P_0 ~ N(0, σ² / (1 - φ²)) (stationary)
    random_walk:     P_t =   P_{t-1} + σ ε_t + J_t      P_0 = 0

On one day τ, uniform on 1..T-L, the news channel announces a tariff change of size
s ~ N(0, shock²); the price moves by s on day τ + L (J_{τ+L} = s, J = 0 otherwise). Inputs
on day t: (P_t, news_t) with news_t = s on day τ, else 0. Target on day t: the next day's
change P_{t+1} - P_t. Scored days: L .. T-1, exactly the days whose target can hold the jump.

Memoryless baseline. The target is (φ - 1) P_t + σ ε_{t+1} + J_{t+1} (φ = 1 for the walk).
A predictor that sees today's price and the news of the last few (< L - 1) days knows the
first term, cannot know ε, and has never seen the announcement that fixes J_{t+1}; since
E[s | anything else] = 0 its best guess for J is 0. Its MSE per scored day is therefore
σ² + E[J²_{t+1}] = σ² + shock² / (T - L), the jump landing on each of the T - L scored days
with probability 1 / (T - L). A predictor that remembers the news L - 1 days back can reach σ².
"""
from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from ..options import NonNegFloat, PosFloat, PosInt, StrictModel, between
from .base import Batch, Task

PROCESSES = ("mean_reverting", "random_walk")


class TariffShockOptions(StrictModel):
    length: int = Field(60, ge=2, description="days T")
    lag: PosInt = Field(20, description="days between the news and the price move (< length)")
    process: Literal[PROCESSES] = Field("mean_reverting", description="mean_reverting or random_walk")
    # φ < 1 keeps the process stationary; φ = 1 is what `random_walk` means
    reversion: Annotated[float, between(0.0, 0.999)] = Field(0.9, description="φ of the mean-reverting price")
    noise: NonNegFloat = Field(0.1, description="daily noise σ")
    shock: PosFloat = Field(1.0, description="std of the announced tariff change")

    @model_validator(mode="after")
    def _lag(self):
        if self.lag >= self.length:  # at least one announcement day and one scored day
            raise PydanticCustomError("tariff", f"lag: must be smaller than length ({self.length}), got {self.lag}")
        return self


class TariffShockTask(Task):
    kind = "tariff_shock"
    loss_kind = "mse"
    Options = TariffShockOptions

    length = property(lambda self: self.opts["length"])
    input_size = property(lambda self: 2)
    output_size = property(lambda self: 1)
    # the announcement is read L - 1 steps before the day whose target holds the jump
    lag = property(lambda self: self.opts["lag"] - 1)

    @property
    def noise_floor(self) -> float:
        """The loss of a predictor that remembers the news: σ²."""
        return self.opts["noise"] ** 2

    @property
    def baseline(self) -> float:
        return self.noise_floor + self.opts["shock"] ** 2 / (self.length - self.opts["lag"])

    def solved(self, loss, accuracy=None) -> bool:
        # the learnable part is the jump variance above the noise floor: solved = 90% of it
        gap = self.baseline - self.noise_floor
        return bool(np.isfinite(loss)) and loss <= self.noise_floor + 0.1 * gap

    def sample(self, rng: np.random.Generator, batch: int) -> Batch:
        T, L = self.length, self.opts["lag"]
        sigma, phi = self.opts["noise"], self.opts["reversion"]
        cols = np.arange(batch)
        tau = rng.integers(1, T - L + 1, size=batch)            # announcement day, 1-based
        s = self.opts["shock"] * rng.standard_normal(batch)
        eps = rng.standard_normal((T, batch))
        jump = np.zeros((T + 1, batch))                          # index = day
        jump[tau + L, cols] = s
        price = np.empty((T + 1, batch))
        if self.opts["process"] == "mean_reverting":
            price[0] = sigma / np.sqrt(1.0 - phi * phi) * rng.standard_normal(batch)
        else:
            phi, price[0] = 1.0, 0.0
        for t in range(1, T + 1):
            price[t] = phi * price[t - 1] + sigma * eps[t - 1] + jump[t]
        news = np.zeros((T + 1, batch))
        news[tau, cols] = s
        x = np.stack([price[1:], news[1:]], axis=-1)             # days 1..T -> steps 0..T-1
        tgt = np.zeros((T, batch, 1))
        tgt[:-1, :, 0] = price[2:] - price[1:-1]                 # day t: P_{t+1} - P_t
        mask = np.zeros((T, batch), dtype=bool)
        mask[L - 1:T - 1] = True                                 # days L .. T-1
        return Batch(x, tgt, mask)

    def sentence(self) -> str:
        o = self.opts
        proc = (f"mean-reverting (φ = {o['reversion']:g})" if o["process"] == "mean_reverting"
                else "random-walk")
        return (f"tariff shock: a {proc} daily price with noise {o['noise']:g} over {self.length} days; "
                f"on a random day the news announces a tariff change of size N(0, {o['shock']:g}²) "
                f"that moves the price {o['lag']} days later; predict the next day's change. "
                f"Memoryless baseline MSE {self.baseline:.5f} (noise floor {self.noise_floor:.5f})")
