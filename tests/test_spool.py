"""The disk spool shared by several processes, on a real directory with a real OTLP receiver.

Writers are separate processes (``multiprocessing`` spawn, as uvicorn starts workers): each
writes into its own flock'ed subdirectory and exits; a later process adopts what the dead ones
left and sends it exactly once, while the directory of a live process is left alone.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from agentportal_otel._retry import ExportControl, OTLPSender
from agentportal_otel._spool import HEADER_SIZE, SUFFIX, Spool, decode_file
from otlp_receiver import OTLPReceiver
from test_export_retry import _valid_request


def _write(directory: str, prefix: str, count: int) -> None:
    spool = Spool(directory, 2**20)
    for i in range(count):
        assert spool.write("traces", _valid_request(f"{prefix}-{i}"))


def _replay(directory: str, url: str) -> int:
    spool = Spool(directory, 2**20)
    sender = OTLPSender(url + "/v1/traces", headers={}, timeout_s=5)
    return spool.replay_once({"traces": sender}, ExportControl(spool), 1.0)


def test_dead_writers_are_adopted_once_and_a_live_one_is_left_alone(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_write, args=(str(tmp_path), f"w{n}", 5)) for n in range(3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    live = Spool(tmp_path, 2**20)  # this process stays alive and holds its lock
    assert live.write("traces", _valid_request("live-0"))
    files = sorted(tmp_path.glob(f"*/*{SUFFIX}"))
    assert len(files) == 16 and all(decode_file(p.read_bytes()) for p in files)

    with OTLPReceiver() as receiver:
        with ctx.Pool(2) as pool:  # two replayers at once: each dead directory goes to one
            sent = pool.starmap(_replay, [(str(tmp_path), receiver.url)] * 2)
        ids = [s.attributes["agentportal.litellm.call_id"] for s in receiver.spans]

    assert sum(sent) == 15
    assert sorted(ids) == sorted(f"w{n}-{i}" for n in range(3) for i in range(5))
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [os.path.basename(str(live._own_dir))], left  # only the live process's directory
    assert len(list(tmp_path.glob(f"*/*{SUFFIX}"))) == 1


def test_the_bound_is_kept(tmp_path: Path) -> None:
    body = _valid_request("x")
    spool = Spool(tmp_path, 3 * (len(body) + HEADER_SIZE))
    assert [spool.write("traces", body) for _ in range(5)] == [True, True, True, False, False]
    assert spool.used_bytes() <= spool.max_bytes
