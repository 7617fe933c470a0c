"""A real terminal for tests: a tmux server of the test's own (its own socket, so nothing else
running tmux is touched), one window running a command, its screen read with capture-pane."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess

import pytest

from conftest import wait_until


class Tmux:
    def __init__(self, tmp_path, command: list[str], width: int = 160, height: int = 40,
                 env: dict[str, str] | None = None):
        if shutil.which("tmux") is None:
            pytest.skip("no tmux (make sysdeps installs it as root)")
        self.socket = str(tmp_path / "tmux.sock")
        env = {k: v for k, v in (env or os.environ).items() if k != "CI"}
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in
                           {"PATH": env.get("PATH", ""), "TERM": "xterm-256color"}.items())
        # The tmux server inherits this process's environment: drop CI there explicitly
        # (a terminal program draws no bar in CI).
        shell = f"env -u CI {exports} {shlex.join(command)}; echo \"[exit $?]\"; sleep 30"
        self._tmux("new-session", "-d", "-x", str(width), "-y", str(height), shell)

    def _tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True,
                              text=True, timeout=20)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p").stdout

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", *keys)

    def wait_for(self, *needles: str, timeout: float = 30.0) -> str:
        """Wait until the screen shows every needle; return that screen."""
        def shown() -> str | None:
            screen = self.screen()
            return screen if all(n in screen for n in needles) else None
        return wait_until(shown, timeout, what=lambda: f"{needles} on the screen:\n"
                          + self.screen())

    def close(self) -> None:
        self._tmux("kill-server")
