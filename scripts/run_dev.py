"""`make run`'s process runner: the Procfile.dev processes side by side, stopped cleanly by Ctrl-C.

honcho parses the Procfile, starts each process (in its own session) and prints its lines; only the
stop differs from `honcho start`, which sends SIGTERM to each process *group* and SIGKILL after 5 s.
The Celery worker's pool processes are in that group: they die under their parent ("ERROR ... exited
with 'signal 15 (SIGTERM)'", celery/celery#2700), the worker is killed before its warm shutdown ends
(on the filesystem broker it takes 5-10 s), and honcho exits 130 or 143, which make reports as an error.

Here Ctrl-C (SIGINT or SIGTERM to this runner) sends SIGTERM to each process itself, not its group —
Procfile.dev's ``exec`` makes that the program rather than a shell. runserver and the fakes stop, beat
saves its state, the worker makes its warm shutdown (it stops its own pool, after the running tasks)
and exits 0. A second Ctrl-C, or ``--stop-timeout`` seconds, kills what is left. A stop the user asked
for exits 0; a process that ends on its own stops the others, and its exit code becomes ours.
"""

from __future__ import annotations

import argparse
import datetime
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path

from honcho.colour import get_colours
from honcho.environ import parse_procfile
from honcho.printer import Message, Printer
from honcho.process import Process

# Exit codes of a process that stopped because we asked it to (a clean exit, or ended by our SIGTERM).
STOPPED_AS_ASKED = {0, -signal.SIGTERM, 128 + signal.SIGTERM}
# After this many seconds of stopping, say who is still finishing.
PATIENCE_NOTE_AFTER = 3.0


class Runner:
    """Runs the processes of one Procfile until they end or the user stops them."""

    def __init__(self, processes: dict[str, str], *, stop_timeout: float, output=sys.stdout):
        self.events: queue.Queue[Message] = queue.Queue()
        self.printer = Printer(output)  # colours only on a terminal
        self.printer.width = max([len("system"), *map(len, processes)])
        colours = get_colours()
        self.processes = {name: Process(cmd, name=name, colour=next(colours)) for name, cmd in processes.items()}
        self.pids: dict[str, int] = {}
        self.returncodes: dict[str, int] = {}
        self.asked_to_stop: set[str] = set()
        self.stop_timeout = stop_timeout
        self.stop_requested = 0  # Ctrl-Cs received
        self.stopping_since: float | None = None
        self.noted_patience = False
        self.forced = False
        self.exit_code: int | None = None

    def say(self, text: str) -> None:
        self.printer.write(Message(type="line", data=f"{text}\n", time=_now(), name="system", colour=None))

    def on_signal(self, signum, frame) -> None:
        self.stop_requested += 1
        if self.stop_requested == 1:
            self.say(f"{signal.Signals(signum).name} received: stopping (Ctrl-C again to kill at once)")
            self.stop()
        elif not self.forced:
            self.kill_the_rest(reason="stopped again")

    def stop(self) -> None:
        """SIGTERM, once, to each running process (only the process: the worker stops its own pool)."""
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()
        for name, pid in self.pids.items():
            if name not in self.returncodes and name not in self.asked_to_stop:
                self.asked_to_stop.add(name)
                _signal(pid, signal.SIGTERM, group=False)

    def still_running(self) -> list[str]:
        return [name for name in self.pids if name not in self.returncodes]

    def kill_the_rest(self, *, reason: str) -> None:
        self.forced = True
        for name in self.still_running():
            self.say(f"{reason}: killing {name}")
            _signal(self.pids[name], signal.SIGKILL, group=True)

    def watch_the_stop(self) -> None:
        if self.stopping_since is None or self.forced:
            return
        waited = time.monotonic() - self.stopping_since
        if waited > self.stop_timeout:
            self.kill_the_rest(reason=f"not stopped after {self.stop_timeout:g} s")
        elif waited > PATIENCE_NOTE_AFTER and not self.noted_patience and self.still_running():
            self.noted_patience = True
            self.say(f"waiting for {', '.join(self.still_running())} to finish stopping"
                     " (the worker first completes its running tasks)")

    def run(self) -> int:
        for process in self.processes.values():
            # ignore_signals=False: signal handlers can only be set in the main thread, which is ours.
            threading.Thread(target=process.run, args=(self.events, False), daemon=True).start()
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)
        while len(self.returncodes) < len(self.processes):
            try:
                message = self.events.get(timeout=0.1)
            except queue.Empty:
                message = None
            if message is not None:
                self.handle(message)
            self.watch_the_stop()
        if self.exit_code is not None:
            return self.exit_code
        if self.forced:
            self.say("stopped, some by force")
            return 1
        self.say("stopped")
        return 0

    def handle(self, message: Message) -> None:
        if message.type == "line":
            self.printer.write(message)
        elif message.type == "start":
            self.pids[message.name] = message.data["pid"]
            if self.stopping_since is not None:  # started after the Ctrl-C: stop it too
                self.stop()
        elif message.type == "stop":
            name, code = message.name, message.data["returncode"]
            self.returncodes[name] = code
            if name not in self.asked_to_stop or code not in STOPPED_AS_ASKED:
                # Ended on its own, failed to stop cleanly, or was killed: make must not call that a success.
                self.say(f"{name} stopped (exit code {code})")
                if self.exit_code is None:
                    self.exit_code = code if code > 0 else 1
            self.stop()  # one process gone: stop the others (a no-op once they are all stopping)


def _signal(pid: int, signum: int, *, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, signum)  # each process leads its own session (honcho's Popen)
        else:
            os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _now() -> datetime.datetime:
    return datetime.datetime.now()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("procfile", nargs="?", default="Procfile.dev")
    parser.add_argument("--stop-timeout", type=float, default=float(os.environ.get("STOP_TIMEOUT", 30)),
                        help="seconds a process may take to stop after Ctrl-C before it is killed (default 30)")
    args = parser.parse_args(argv)
    procfile = parse_procfile(Path(args.procfile).read_text(encoding="utf-8"))
    return Runner(dict(procfile.processes), stop_timeout=args.stop_timeout).run()


if __name__ == "__main__":
    sys.exit(main())
