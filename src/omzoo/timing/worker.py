"""One side of an A/B test: a long-lived process that holds one compiled artefact's session and runs rounds on
request (`omzoo abtest`, omzoo.timing.pairs drives it).

It runs in the side's own environment (that revision's Python and toolkit) with this checkout's omzoo first on
PYTHONPATH, so both sides measure with the same harness and only the toolkit and the artefact differ. It speaks
JSON lines: one request on stdin, one reply on the protocol stream, which is the process's original stdout; fd 1
is pointed at stderr first, so whatever a runtime prints cannot corrupt the protocol.

Requests: load (artefact, bench rules: opens it, warms up once), round (untimed switch warm-up, then one timed
round watched for others' CPU), infer (top-1 per image on a shard set), close. A reply is {"ok": ...} or
{"error": "..."}; a backend that must start in another environment replies {"restart": env} and the coordinator
starts the worker again with it.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import IO, Any

from omzoo.backends.artefact import load_compiled
from omzoo.backends.base import Backend, run_shards
from omzoo.core.errors import RestartInEnvironment
from omzoo.core.metrics import topk
from omzoo.core.onnxgraph import random_input
from omzoo.core.params import BenchConfig
from omzoo.data.shards import ShardSet
from omzoo.timing.contention import RoundMonitor
from omzoo.timing.measure import timed_round, warm_up


class Session:
    """The loaded artefact and the bench rules it runs rounds by."""

    def __init__(self) -> None:
        self.backend: Backend | None = None
        self.cfg = BenchConfig()
        self.batch_size = 0
        self.x: Any = None

    def load(self, compiled: str, bench: dict[str, Any]) -> dict[str, Any]:
        self.close()
        self.cfg = BenchConfig(**bench)
        backend, meta = load_compiled(Path(compiled))
        self.backend, self.batch_size = backend, int(meta["batch_size"])
        shape, dtype = backend.input_spec()
        self.x = random_input(shape, dtype, self.cfg.seed)
        warm = warm_up(self.step, self.cfg)
        return {"describe": backend.describe(), "meta": meta, "warmup_iters": warm, "pid": os.getpid()}

    def step(self) -> float | None:
        assert self.backend is not None
        return self.backend.step(self.x)

    def round(self, warmup_iters: int) -> dict[str, Any]:
        if self.backend is None:
            raise ValueError("round before load")
        for _ in range(warmup_iters):
            self.step()
        with RoundMonitor(threshold=self.cfg.contention_cores) as watch:
            r = timed_round(self.step, self.cfg)
        load = watch.load
        return {**r.values(self.batch_size), "iters": int(r.e2e.size), "duration_s": r.duration_s,
                "capped": r.capped, "others_cores": None if load is None else load.others_cores,
                "contended": int(watch.contended)}

    def infer(self, shards: str) -> dict[str, Any]:
        if self.backend is None:
            raise ValueError("infer before load")
        data = ShardSet(Path(shards))
        logits, _ = run_shards(self.backend, data, self.batch_size, progress=False)
        labels = data.labels
        best = topk(logits, 5)
        return {"names": data.names, "labels": None if labels is None else labels.tolist(),
                "predicted": best[:, 0].tolist(), "top5": best.tolist(), "shards_hash": data.hash}

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
        self.backend = None


def serve(requests: IO[str], replies: IO[str]) -> None:
    """Answer requests until `close` or the end of input."""
    session = Session()

    def reply(doc: dict[str, Any]) -> None:
        replies.write(json.dumps(doc) + "\n")
        replies.flush()

    for line in requests:
        try:
            req = json.loads(line)
            op = req.get("op")
            if op == "close":
                break
            if op == "load":
                reply({"ok": session.load(req["compiled"], req["bench"])})
            elif op == "round":
                reply({"ok": session.round(int(req.get("warmup_iters", 0)))})
            elif op == "infer":
                reply({"ok": session.infer(req["shards"])})
            else:
                reply({"error": f"unknown request {op!r}"})
        except RestartInEnvironment as e:
            reply({"restart": e.env, "message": str(e)})
        except Exception as e:  # noqa: BLE001 - the coordinator reports it with the side's name, in one line
            if os.environ.get("OMZOO_TRACEBACK"):
                traceback.print_exc()
            reply({"error": f"{type(e).__name__}: {e}"})
    session.close()


def main() -> None:
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # a runtime's prints go to stderr, never into the protocol
    sys.stdout = sys.stderr
    serve(sys.stdin, replies)


if __name__ == "__main__":
    main()

