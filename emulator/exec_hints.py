"""What a failed exec means, said so a student knows what to do next.

A container runtime answers a command it cannot start with its own diagnostic (`OCI
runtime exec failed: exec failed: unable to start container process: exec: "nosuchcmd":
executable file not found in $PATH: unknown`, exit 126). A shell in the same place would
say `nosuchcmd: not found` and exit 127. This turns the first into the second, plus the
next step; any other result passes through unchanged."""
from __future__ import annotations

import re

from .compute.driver import ExecResult

_OCI = re.compile(r"OCI runtime exec failed|unable to start container process")
_NOT_FOUND = re.compile(r'exec: "([^"]*)": (?:executable file not found in \$PATH|stat [^:]*: no such file or directory)')
_NOT_EXECUTABLE = re.compile(r'exec: "([^"]*)": permission denied')


def explain(result: ExecResult) -> ExecResult:
    text = result.stdout + result.stderr
    if not _OCI.search(text):
        return result
    m = _NOT_FOUND.search(text)
    if m:
        prog = m.group(1)
        return ExecResult(127, "", (
            f"{prog}: command not found in this instance (its image has no program of that name).\n"
            f"Shell built-ins and scripts need a shell: -- sh -c '{prog} ...'; "
            "`ls /bin /usr/bin` (through exec) lists the programs it has.\n"))
    m = _NOT_EXECUTABLE.search(text)
    if m:
        return ExecResult(126, "", f"{m.group(1)}: permission denied (the file is not executable in this "
                                   f"instance; run it through a shell: -- sh {m.group(1)})\n")
    return result
