"""What the command line says when a command is interrupted or fails unexpectedly: one line, never a traceback.

A command records where it is (`context`, `stage`); `interrupted` and `crashed` turn that into the
one-line message, the latter after writing the full traceback to a log file.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

_STATE: dict[str, object] = {}


IS_PROGRAM = False  # set by `cli.program`: this process is the `dpotcube` command, not a library call


def exit_now_if_program(code: int) -> None:
    """After Ctrl-C, end the `dpotcube` process at once (output flushed, files already closed by the unwinding):
    interpreter teardown with JAX/XLA work cut off mid-call could crash (SIGSEGV) instead of exiting `code`."""
    if IS_PROGRAM:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def context(build_dir: Path | None = None, resume: str | None = None) -> None:
    """Start a command: its build folder (where a crash log goes) and the command that resumes it."""
    _STATE.clear()
    _STATE.update(build_dir=build_dir, resume=resume, stage=None, interrupt=False)


def remember_interrupts() -> None:
    """Ctrl-C raises KeyboardInterrupt as usual, and is also remembered: a KeyboardInterrupt raised where Python
    swallows exceptions (a garbage-collection callback, a `__del__`) still stops the build at the stage's end."""
    if threading.current_thread() is not threading.main_thread():
        return

    signal.signal(signal.SIGINT, interrupt_handler)


def interrupt_handler(signum: int, frame) -> None:
    """Remember the Ctrl-C; raise KeyboardInterrupt unless `frame` is where Python would swallow it and print its
    traceback (a garbage-collection callback such as JAX's, a `__del__`): there the stage's end stops the build."""
    _STATE["interrupt"] = True
    if not _swallowed_at(frame):
        raise KeyboardInterrupt


def _swallowed_at(frame) -> bool:
    callbacks = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    while frame is not None:
        if frame.f_code in callbacks or frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Mark `name` as the stage running (a `stage_monitor` for `dpotcube.pipeline.build`); a Ctrl-C that was
    swallowed during the stage stops the build before the stage is recorded as done."""
    _STATE["stage"] = name
    yield
    if _STATE.get("interrupt"):
        raise KeyboardInterrupt


def interrupted() -> str:
    """The line printed on Ctrl-C."""
    line = f"interrupted during stage `{_STATE['stage']}`" if _STATE.get("stage") else "interrupted"
    if _STATE.get("build_dir"):
        line += f"; finished stages are kept in {_STATE['build_dir']}"
    if _STATE.get("resume"):
        line += f". Resume with: {_STATE['resume']}"
    return line + "."


def crashed(exc: BaseException) -> str:
    """Write the traceback of `exc` to a log file; return the line naming the error, the stage and the log."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    log = _write_log(text)
    stage_name = _STATE.get("stage")
    where = f" in stage `{stage_name}`" if stage_name else ""
    reason = " ".join(str(exc).split())[:200] or "no message"
    saved = f"the full traceback is in {log}" if log else "no log could be written; rerun with --debug to see it"
    return (f"unexpected {type(exc).__name__}{where}: {reason}. This is a bug in dpotcube: {saved} "
            "(please attach it to a report; --debug prints it here).")


def _write_log(text: str) -> Path | None:
    name = f"crash-{time.strftime('%Y%m%dT%H%M%S')}.log"
    folders = []
    if isinstance(_STATE.get("build_dir"), Path) and Path(_STATE["build_dir"]).is_dir():
        folders.append(Path(_STATE["build_dir"]) / "logs")
    folders.append(Path(tempfile.gettempdir()) / "dpotcube-logs")
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text)
            return path
        except OSError:
            continue
    return None
