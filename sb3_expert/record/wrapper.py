"""``RecordDemonstrations``: a gymnasium wrapper recording whatever drives the environment."""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from sb3_expert.data.demonstrations import Demonstrations
from sb3_expert.data.spaces import row_nbytes
from sb3_expert.errors import ArgumentTypeError
from sb3_expert.record.sinks import open_sink
from sb3_expert.record.streams import Stream, check_recorder_args

__all__ = ["RecordDemonstrations", "buffer_rows", "env_metadata"]


def buffer_rows(observation_space: spaces.Space, chunk_size: int, max_bytes: int = 32 * 2**20) -> int:
    """Rows per recording buffer: ``chunk_size``, fewer for large (image) observations."""
    return int(max(16, min(chunk_size, max_bytes // row_nbytes(observation_space))))


def env_metadata(env: Any, producer: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """Metadata for a recording: the env id (when the env has a spec), the producer, and ``extra``."""
    spec = getattr(env, "spec", None)
    out: dict[str, Any] = {"producer": dict(producer)}
    if spec is not None and getattr(spec, "id", None):
        out["env_id"] = spec.id
    out.update(extra or {})
    return out


class RecordDemonstrations(gym.Wrapper):
    """Record every step of an environment, whatever drives it: an agent, a controller, a person.

    Per step it records the observation the action was chosen on, the action as the environment
    received it, the reward, and episode boundaries; per episode how it ended (terminated and
    truncated kept apart) and its final observation; chosen ``info`` keys on request. Per step it
    only copies into preallocated buffers; every ``chunk_size`` steps the buffers are written to the
    file and flushed. ``close()`` (or leaving a ``with`` block, or the interpreter's normal exit)
    writes everything; an episode still running is kept, marked truncated. A reset in the middle of
    an episode ends it as truncated.

    :param env: the environment
    :param path: ``.h5`` (written as it goes), ``.npz`` (written on close), or None to keep the
        demonstrations in memory (:attr:`demonstrations`)
    :param overwrite: replace an existing file
    :param append: add to an existing file
    :param info_keys: ``info`` keys to record per step (each becomes ``infos[key]``)
    :param chunk_size: steps between writes to the file
    :param flush_every_episode: also write and flush at the end of every episode
    :param metadata: extra provenance stored in the file (``env_id`` is taken from the env's spec)
    :raises OutputExistsError: when ``path`` exists and neither ``overwrite`` nor ``append`` is set
    :raises UnsupportedSpaceError: for spaces this library cannot store

    .. code-block:: python

        with RecordDemonstrations(gym.make("Pendulum-v1"), "pid.h5") as env:
            obs, _ = env.reset(seed=0)
            for _ in range(1000):
                obs, reward, terminated, truncated, _ = env.step(pid(obs))
                if terminated or truncated:
                    obs, _ = env.reset()
    """

    def __init__(
        self,
        env: gym.Env,
        path: str | os.PathLike[str] | None = None,
        *,
        overwrite: bool = False,
        append: bool = False,
        info_keys: Sequence[str] = (),
        chunk_size: int = 4096,
        flush_every_episode: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(env, gym.Env):
            raise ArgumentTypeError(
                f"env: expected a gymnasium.Env, got {type(env).__name__}; "
                "for an SB3 VecEnv use VecRecordDemonstrations"
            )
        check_recorder_args(info_keys, overwrite=overwrite, append=append, flush_every_episode=flush_every_episode)
        super().__init__(env)
        meta = env_metadata(env, {"recorder": "RecordDemonstrations"}, metadata)
        spaces = (env.observation_space, env.action_space)
        self.sink = open_sink(path, *spaces, overwrite=overwrite, append=append, metadata=meta, chunk_size=chunk_size)
        self.stream = Stream(
            self.sink, exclusive=True, capacity=buffer_rows(env.observation_space, chunk_size), info_keys=info_keys
        )
        self.flush_every_episode = flush_every_episode
        self._env_step = env.step
        self.recording = True
        self._finalizer = weakref.finalize(self, self.sink.close, [self.stream])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the environment; an episode still running ends as truncated."""
        obs, info = self.env.reset(seed=seed, options=options)
        if not self.recording:
            return obs, info
        self.stream.begin(obs)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the environment and record the step (the hot path: copies into buffers only)."""
        if not self.stream.running:
            return self._step_not_running(action)
        return self.stream.record_step(action, self._env_step, flush_every_episode=self.flush_every_episode)

    def _step_not_running(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if not self.recording:
            return self.env.step(action)
        raise ResetNeeded(
            "RecordDemonstrations: cannot call step() before reset() or after an episode ended "
            "(terminated or truncated); call reset() first"
        )

    def demonstrations(self) -> Demonstrations:
        """Everything recorded so far (an episode still running included, as truncated), read back: from the file
        for an ``.h5`` recording, so this is a call that does I/O."""
        return self.sink.demonstrations([] if self.sink.closed else [self.stream])

    def flush(self) -> None:
        """Write every recorded step to the file now (a running episode continues)."""
        self.sink.flush([self.stream])

    def stop_recording(self) -> None:
        """Write everything and close the file, leaving the environment open; the wrapper then passes
        steps through unrecorded. Idempotent."""
        self.recording = False
        self._finalizer()
        self.stream.running = False

    def close(self) -> None:
        """Stop recording (see :meth:`stop_recording`) and close the environment."""
        self.stop_recording()
        super().close()
