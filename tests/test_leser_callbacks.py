"""The leser_time_budget callback: a run with LESER_TIME_BUDGET_S stops and saves at the first step end past the
budget, counted from the first step, and one with LESER_STOP_FILE at the first step end that finds the file;
without the variables it never interferes."""

import pytest
from transformers import TrainerControl

from tests.fixtures_recipes import REPO_ROOT


@pytest.fixture
def callbacks_module():
    from swift.utils import import_external_file

    return import_external_file(str(REPO_ROOT / "swift_plugins" / "leser_callbacks.py"))


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def run_steps(callback, clock, step_seconds):
    """Simulate the trainer's loop; returns the number of steps run and the control of the last one."""
    control = TrainerControl()
    for step, seconds in enumerate(step_seconds, start=1):
        callback.on_step_begin(None, None, control)
        clock.now += seconds
        control = callback.on_step_end(None, None, control)
        if control.should_training_stop:
            return step, control
    return len(step_seconds), control


def test_budget_stops_and_saves_after_the_step_that_crosses_it(callbacks_module, monkeypatch):
    monkeypatch.setenv("LESER_TIME_BUDGET_S", "25")
    clock = FakeClock()
    callback = callbacks_module.TimeBudgetCallback(None, None, clock=clock)
    clock.now += 500  # model loading before the first step does not count
    steps, control = run_steps(callback, clock, [10] * 10)
    assert steps == 3  # 10, 20, 30 s: the third step ends past 25 s
    assert control.should_save and control.should_training_stop


def test_stop_file_stops_and_saves_at_the_next_step_end_and_is_removed(
    callbacks_module, monkeypatch, tmp_path
):
    monkeypatch.delenv("LESER_TIME_BUDGET_S", raising=False)
    stop = tmp_path / "STOP"
    monkeypatch.setenv("LESER_STOP_FILE", str(stop))
    clock = FakeClock()
    callback = callbacks_module.TimeBudgetCallback(None, None, clock=clock)
    control = TrainerControl()
    for _ in range(3):  # no file: the run goes on
        control = callback.on_step_end(None, None, control)
    assert not control.should_training_stop and not control.should_save
    stop.touch()
    control = callback.on_step_end(None, None, control)
    assert control.should_save and control.should_training_stop
    assert not stop.exists()  # a resume is not stopped again by the same file


def test_a_stop_file_older_than_the_run_is_removed_not_obeyed(callbacks_module, monkeypatch, tmp_path):
    stop = tmp_path / "STOP"
    stop.touch()
    monkeypatch.setenv("LESER_STOP_FILE", str(stop))
    callback = callbacks_module.TimeBudgetCallback(None, None, clock=FakeClock())
    assert not stop.exists()
    control = callback.on_step_end(None, None, TrainerControl())
    assert not control.should_training_stop


def test_no_budget_never_stops(callbacks_module, monkeypatch):
    monkeypatch.delenv("LESER_TIME_BUDGET_S", raising=False)
    monkeypatch.delenv("LESER_STOP_FILE", raising=False)
    clock = FakeClock()
    callback = callbacks_module.TimeBudgetCallback(None, None, clock=clock)
    steps, control = run_steps(callback, clock, [1e6] * 5)
    assert steps == 5 and not control.should_training_stop and not control.should_save


@pytest.mark.parametrize("raw", ["soon", "-5", "nan"])
def test_bad_budget_names_the_variable(callbacks_module, monkeypatch, raw):
    monkeypatch.setenv("LESER_TIME_BUDGET_S", raw)
    with pytest.raises(ValueError, match="LESER_TIME_BUDGET_S"):
        callbacks_module.TimeBudgetCallback(None, None)


def test_registered_under_the_recipe_name(callbacks_module):
    from swift.callbacks import callbacks_map

    assert callbacks_map["leser_time_budget"] is callbacks_module.TimeBudgetCallback
