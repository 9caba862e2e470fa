"""Read a W&B offline run file (``run-<id>.wandb``) back: its history rows and its config.

The file is W&B's transaction log: a 7-byte header (``:W&B``, a magic number, a version),
then LevelDB-log-style 32 KiB blocks of records (4-byte checksum, 2-byte little-endian
length, 1-byte kind: full / first / middle / last piece), each a ``wandb_internal_pb2.Record``.
"""

import json
from pathlib import Path
from typing import Any

HEADER = 7
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _payloads(data: bytes):
    assert data[:4] == b":W&B", "not a W&B transaction log"
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a record header is padding
            pos += left
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        payload = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            yield payload
        elif kind == FIRST:
            pending = payload
        elif kind == MIDDLE:
            pending += payload
        elif kind == LAST:
            yield pending + payload


def _key(item) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def read_records(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(history rows in order, the run's config with W&B's own ``_wandb`` entry left out)."""
    from wandb.proto import wandb_internal_pb2 as pb

    history, config = [], {}
    for payload in _payloads(Path(path).read_bytes()):
        record = pb.Record.FromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({_key(item): json.loads(item.value_json) for item in record.history.item})
        elif kind in ("config", "run"):
            source = record.config if kind == "config" else record.run.config
            for item in source.update:
                if _key(item) != "_wandb":
                    config[_key(item)] = json.loads(item.value_json)
    return history, config
