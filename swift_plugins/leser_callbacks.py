"""ms-swift trainer callback: stop training cleanly when a wall-clock budget is spent or a stop file appears.

    swift rlhf recipe.yaml --external_plugins swift_plugins/leser_callbacks.py --callbacks leser_time_budget

with ``LESER_TIME_BUDGET_S`` set (seconds, counted from the first training step), or ``LESER_STOP_FILE`` naming a
path (``make grpo`` sets RUN_DIR/grpo/STOP). When a step ends past the budget, or with the stop file present, the
trainer saves a checkpoint and stops, as it does at ``max_steps``: the run ends with complete weights (a kill loses
the steps since the last checkpoint, and a ``timeout`` kill can leave a half-written one) and the schedule, the
logs and ``make grpo RESUME=1`` work as after any other stop. The stop file is removed when it is obeyed, so a
resume runs on; one found when the trainer is built is an earlier run's and is removed too. Without either
variable the callback does nothing. The budget serves the one-GPU learning experiment (``scripts/gpu/learn_1gpu.sh``),
whose machine is lent for a fixed number of minutes; the stop file a long CPU run in the background
(``touch runs/learn/grpo/STOP``). Both are for single-process runs (the CPU and one-GPU recipes load it): with
several ranks each would see the clock or the file at its own moment and stop at a different step.
"""

from __future__ import annotations

import os
import time

from swift.callbacks import TrainerCallback, callbacks_map

BUDGET_ENV = "LESER_TIME_BUDGET_S"
STOP_FILE_ENV = "LESER_STOP_FILE"


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
        self.stop_file = os.environ.get(STOP_FILE_ENV, "").strip()
        # a stop file present before training is an earlier run's, not meant for this one
        if self.stop_file and os.path.exists(self.stop_file):
            os.remove(self.stop_file)
            print(f"leser: removed a stale {self.stop_file} (it predates this run)", flush=True)
        self.clock = clock
        self.started = None

    def on_step_begin(self, args, state, control, **kwargs):
        if self.started is None:
            self.started = self.clock()

    def on_step_end(self, args, state, control, **kwargs):
        over_budget = (
            self.budget_s and self.started is not None and self.clock() - self.started >= self.budget_s
        )
        asked_to_stop = bool(self.stop_file) and os.path.exists(self.stop_file)
        if asked_to_stop:
            os.remove(self.stop_file)
            print(f"leser: {self.stop_file} found: saving and stopping", flush=True)
        if over_budget or asked_to_stop:
            control.should_save = True
            control.should_training_stop = True
        return control


callbacks_map["leser_time_budget"] = TimeBudgetCallback
