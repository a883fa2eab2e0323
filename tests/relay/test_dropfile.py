"""The out-of-band drop report: files a child leaves in the relay directory, read once."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from otelkit.relay._dropfile import collect_drop_files, write_drop_file


def test_reports_written_by_several_processes_are_summed_once_and_removed(tmp_path: Path) -> None:
    directory = str(tmp_path)
    assert write_drop_file(directory, 3, 1, 0)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=write_drop_file, args=(directory, 10, 0, 5)) for _ in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    assert collect_drop_files(directory) == (33, 1, 15)
    assert os.listdir(directory) == []
    assert collect_drop_files(directory) == (0, 0, 0)  # nothing is counted twice


def test_unrelated_half_written_and_malformed_files_are_not_counted(tmp_path: Path) -> None:
    (tmp_path / "relay.sock").write_text("")
    (tmp_path / ".dropped-1-aa").write_text("7 7 7\n")  # not yet renamed: not a report yet
    (tmp_path / "dropped-2-bb").write_text("seven 7\n")
    assert write_drop_file(str(tmp_path), 2, 0, 0)
    assert collect_drop_files(str(tmp_path)) == (2, 0, 0)
    assert sorted(os.listdir(tmp_path)) == [".dropped-1-aa", "relay.sock"]


def test_a_directory_that_is_gone_is_reported_as_not_written(tmp_path: Path) -> None:
    gone = str(tmp_path / "gone")
    assert write_drop_file(gone, 1, 0, 0) is False
    assert collect_drop_files(gone) == (0, 0, 0)
