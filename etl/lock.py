"""A run lock beside the output, so that two scheduled runs on the same
outputs never overlap. The lock file holds the owner's pid, host and start
time; a lock left by a killed run (its process is gone) is detected and
taken over."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from grading.errors import GradingError, OutputFolderNotWritable

WRITING_SECONDS = 10.0  # an empty lock younger than this belongs to a run that is starting
STALE_AFTER = dt.timedelta(hours=12)  # a lock from another host older than this is considered stale


class RunLocked(GradingError):
    """Another run holds the lock on the same outputs."""

    code = "E402"


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would send CTRL+C on Windows
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """Exclusive lock file `<output>.lock`; `stale_note` says if a dead run's lock was taken over."""

    def __init__(self, output: Path) -> None:
        self.path = output.with_name(output.name + ".lock")
        self.stale_note = ""
        self._held = False

    def _owner(self) -> dict[str, object] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            return None

    def _age(self) -> float:
        try:
            return time.time() - self.path.stat().st_mtime
        except OSError:
            return 0.0

    def _is_stale(self, owner: dict[str, object] | None) -> bool:
        if owner is None:
            return True  # unreadable or half-written by a killed process
        pid = owner.get("pid")
        if owner.get("host") == socket.gethostname():
            return not (isinstance(pid, int) and _alive(pid))
        try:
            started = dt.datetime.fromisoformat(str(owner.get("started")))
        except ValueError:
            return True
        return dt.datetime.now() - started > STALE_AFTER

    def acquire(self) -> RunLock:
        try:
            return self._acquire()
        except OSError as exc:
            raise OutputFolderNotWritable(
                f"无法在输出文件夹 {self.path.parent} 中创建运行锁文件：{exc.strerror}。"
                "请检查该文件夹是否存在且可写（只读文件夹、权限不足），或把 output.file 改到可写的文件夹。") from None

    def _acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": dt.datetime.now().isoformat(timespec="seconds")}, ensure_ascii=False)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is None and self._age() < WRITING_SECONDS:  # created by a starting run, not written yet
                    raise RunLocked(f"另一个分级任务正在启动（锁文件 {self.path} 刚刚创建），本次运行已退出，未做任何修改。"
                                    "请稍后重试。") from None
                if not self._is_stale(owner):
                    raise RunLocked(
                        f"另一个分级任务正在运行（进程 {owner.get('pid') if owner else '?'}，"
                        f"主机 {owner.get('host') if owner else '?'}，开始于 {owner.get('started') if owner else '?'}），"
                        f"本次运行已退出，未做任何修改。锁文件：{self.path}"
                    ) from None
                self.stale_note = (f"发现上次中断的运行留下的锁（进程 {owner.get('pid') if owner else '?'} 已不存在），"
                                   "已清除并继续。")
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(info)
            self._held = True
            return self
        raise RunLocked(f"无法获得运行锁 {self.path}，请稍后重试。")

    def release(self) -> None:
        if self._held:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            self._held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
