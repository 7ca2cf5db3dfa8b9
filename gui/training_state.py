"""`TrainingState`: the states of the window's training (`gui.training_controller`'s state machine), read
by the window, the training panel and the foreign-model view."""

from __future__ import annotations

from enum import Enum

__all__ = ["TrainingState"]


class TrainingState(str, Enum):
    """idle → starting → training ⇄ paused → stopping → idle. A ``str`` too: a state equals its name ("idle")."""
    IDLE = "idle"
    STARTING = "starting"
    TRAINING = "training"
    PAUSED = "paused"
    STOPPING = "stopping"

    def __str__(self) -> str:
        return self.value
