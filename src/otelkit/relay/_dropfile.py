"""A relay child's last drop report, when its link cannot take it.

A child that gives up at exit (its ``exit_timeout`` passed while the host, under
back-pressure, was not reading) still owes the host a count of what it lost. That report
must not wait for the host either, so it goes into a small file in the relay's socket
directory (created ``0700`` by the host, so only the host's user writes there), and the host
reads and removes such files whenever a child disconnects and when it closes. The file is
written under a temporary name and renamed, so a reader never sees half of it; a reader
counts a file only if it is the one that removed it, so two readers never count it twice.
"""

from __future__ import annotations

import os

__all__ = ["collect_drop_files", "write_drop_file"]

_PREFIX = "dropped-"
_MAX_SIZE = 100  # bytes: three counters and separators


def write_drop_file(directory: str, logs: int, spans: int, points: int) -> bool:
    """Leave ``logs spans points`` for the host in ``directory``; whether it was written."""
    name = f"{_PREFIX}{os.getpid()}-{os.urandom(6).hex()}"
    temporary = os.path.join(directory, f".{name}")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, f"{logs} {spans} {points}\n".encode())
        finally:
            os.close(fd)
        os.rename(temporary, os.path.join(directory, name))
    except OSError:
        return False
    return True


def collect_drop_files(directory: str) -> tuple[int, int, int]:
    """Sum and remove the drop files in ``directory``: ``(logs, spans, points)``."""
    totals = [0, 0, 0]
    try:
        names = os.listdir(directory)
    except OSError:
        return (0, 0, 0)
    for name in names:
        if not name.startswith(_PREFIX):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as file:
                fields = file.read(_MAX_SIZE).split()
            os.unlink(path)  # claimed: another reader's unlink would fail
        except OSError:
            continue
        if len(fields) == 3 and all(field.isdigit() for field in fields):
            for i, field in enumerate(fields):
                totals[i] += int(field)
    return (totals[0], totals[1], totals[2])
