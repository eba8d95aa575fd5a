"""ms-swift trainer callback: stop training cleanly when a wall-clock budget is spent.

    swift rlhf recipe.yaml --external_plugins swift_plugins/leser_callbacks.py --callbacks leser_time_budget

with ``LESER_TIME_BUDGET_S`` set (seconds, counted from the first training step). When a step ends past the
budget the trainer saves a checkpoint and stops, as it does at ``max_steps``: the run ends with complete weights
(a ``timeout`` kill can leave a half-written checkpoint) and the schedule, the logs and ``make grpo RESUME=1`` work
as after any other stop. Without the variable (or 0) the callback does nothing. Used by the one-GPU learning
experiment (``scripts/gpu/learn_1gpu.sh``), whose machine is lent for a fixed number of minutes.
"""

from __future__ import annotations

import os
import time

from swift.callbacks import TrainerCallback, callbacks_map

BUDGET_ENV = "LESER_TIME_BUDGET_S"


def budget_seconds(environ=os.environ) -> float:
    """The budget from ``LESER_TIME_BUDGET_S``; 0 means none. A value that is not a number >= 0 is an error."""
    raw = environ.get(BUDGET_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{BUDGET_ENV}={raw!r}: expected seconds (a number >= 0)") from None
    if not value >= 0:
        raise ValueError(f"{BUDGET_ENV}={raw!r}: expected seconds (a number >= 0)")
    return value


class TimeBudgetCallback(TrainerCallback):
    def __init__(self, args, trainer, clock=time.monotonic):
        super().__init__(args, trainer)
        self.budget_s = budget_seconds()
        self.clock = clock
        self.started = None

    def on_step_begin(self, args, state, control, **kwargs):
        if self.started is None:
            self.started = self.clock()

    def on_step_end(self, args, state, control, **kwargs):
        if self.budget_s and self.started is not None and self.clock() - self.started >= self.budget_s:
            control.should_save = True
            control.should_training_stop = True
        return control


callbacks_map["leser_time_budget"] = TimeBudgetCallback
