"""A stealthy malicious payload for the safe-loading tests: unpickling it writes a marker file,
then returns the real object, so the model loads and works as if nothing happened."""

from __future__ import annotations

import base64
import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any


def touch_then_return(marker: str, value: Any) -> Any:
    Path(marker).write_text("code ran")
    return value


def touch_then_unpickle(marker: str, blob: bytes) -> Any:
    from sb3_expert.experts.sb3 import _GymToGymnasium  # rl-zoo pickles name gym's classes

    Path(marker).write_text("code ran")
    return _GymToGymnasium(io.BytesIO(blob)).load()


class Payload:
    def __init__(self, function: Any, marker: Path, value: Any) -> None:
        self.function, self.marker, self.value = function, str(marker), value

    def __reduce__(self) -> tuple[Any, ...]:
        return self.function, (self.marker, self.value)


def poison_pickle(path: Path, marker: Path) -> None:
    """Rewrite a pickle file (a vec_normalize.pkl) so that loading it runs the payload, then
    returns the original object."""
    path.write_bytes(pickle.dumps(Payload(touch_then_unpickle, marker, path.read_bytes())))


def poison_zip(path: Path, key: str, marker: Path) -> None:
    """Rewrite an SB3 zip so that its data entry ``key`` (an existing one, or a new extra key)
    runs the payload when unpickled."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(entries["data"])
    item = data.get(key)
    if isinstance(item, dict) and ":serialized:" in item:
        value = pickle.loads(base64.b64decode(item[":serialized:"]))
    else:
        value = {"extra": 1} if item is None else item  # plain JSON (policy_kwargs of plain values) or absent
    blob = base64.b64encode(pickle.dumps(Payload(touch_then_return, marker, value))).decode()
    data[key] = {":type:": str(type(value)), ":serialized:": blob}
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
