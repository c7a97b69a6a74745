"""Docs as tests: read the command blocks of a Markdown file, run them in order in one
shell, and match each command's output against what the doc shows.

The convention, as a reader sees it (docs/README.md says the same for authors):

- A fenced block without a language, or `sh`/`console`/`shell`/`bash`, holds commands.
  In a block with `$ ` prompts, each `$ command` is followed by the output the doc
  promises; in a block without prompts every line is a command (comments are fine) and a
  `# -> text` line promises that `text` appears in the previous command's output.
  Blocks in any other language (`text`, `json`, ...) are not commands.
- `…` (or `...`) stands for text that varies within a line; a line of just `…` for any
  number of lines. Numbers, ids, keys and times match any value of the same shape, and
  the value a later command uses is the one this run printed (a doc's `i-0abc...` or port
  `30452` in a command is replaced by this run's). `i-...`, `ami-...` and `2xxxx` are
  named placeholders: bound from an output, replaced in a later command.
- Progress lines (`[   3.2s] … still working`) are neither shown nor checked: how many a
  wait prints depends on the machine's speed.
- A command exits 0, unless its shown output has an `error:` line (then it must fail).
- A line in italics right above a block says when it is not run as is:
  `*(not run by the docs test: REASON)*` skips it (the reason is shown to the reader);
  `*(runs in the background in the docs test: REASON)*` starts it in the background
  (the one such command the test knows is `make up`: it starts the server the same way
  and checks the block's output against the server's first lines).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

SHELL_LANGS = {"", "sh", "console", "shell", "bash", "shell-session"}
MARKER = re.compile(r"^\*\((not run|runs in the background)(?: (?:by|in) the docs test)?: (.+)\)\*$")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_]+)\1")
ELLIPSIS = ("…", "...")
PLACEHOLDERS = {"i-...": r"i-[0-9a-f]{17}", "ami-...": r"ami-[0-9a-f]+", "2xxxx": r"\d+"}
_PLACEHOLDER = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(re.escape(p) for p in PLACEHOLDERS) + r")(?![A-Za-z0-9])")


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)  # whole output (prompt blocks)
    fragments: list[str] = field(default_factory=list)  # `# ->` promises (plain blocks)
    prompt: bool = True
    line: int = 0


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    mode: str  # run | skip | background
    reason: str
    steps: list[Step]
    text: str


def _complete(text: str) -> bool:
    """True when TEXT is a whole shell command: quotes closed, no trailing backslash."""
    if text.rstrip().endswith("\\"):
        return False
    lex = shlex.shlex(text, posix=True, punctuation_chars=False)
    lex.whitespace_split, lex.commenters = True, "#"
    try:
        list(lex)
    except ValueError:
        return False
    return True


def _take_command(lines: list[str], i: int, first: str) -> tuple[str, int]:
    """The command starting with FIRST (line i already consumed): continuation lines,
    multi-line quotes and here-documents join it. Returns (command, next line index)."""
    parts = [first]
    while not _complete("\n".join(parts)) and i < len(lines):
        parts.append(lines[i])
        i += 1
    for m in HEREDOC.finditer("\n".join(parts)):
        end = m.group(2)
        while i < len(lines):
            parts.append(lines[i])
            i += 1
            if lines[i - 1].strip() == end:
                break
    return "\n".join(parts), i


def parse_block(body: list[str], start: int) -> list[Step]:
    steps: list[Step] = []
    if any(line.startswith("$ ") or line == "$" for line in body):
        i = 0
        while i < len(body):
            line = body[i]
            if line.startswith("$ "):
                cmd, i = _take_command(body, i + 1, line[2:])
                steps.append(Step(cmd, line=start + i))
            elif steps:
                steps[-1].expected.append(line)
                i += 1
            else:
                raise ValueError(f"line {start + i + 1}: output before the first `$ ` command")
        return steps
    i = 0
    while i < len(body):
        line = body[i]
        stripped = line.strip()
        if stripped.startswith("# ->"):
            if not steps:
                raise ValueError(f"line {start + i + 1}: `# ->` before any command")
            steps[-1].fragments.append(stripped[4:].strip())
            i += 1
        elif not stripped or stripped.startswith("#"):
            i += 1
        else:
            cmd, i = _take_command(body, i + 1, line)
            steps.append(Step(cmd, prompt=False, line=start + i))
    return steps


def parse(markdown: str) -> list[Block]:
    """Every fenced block of shell commands, in order, with how the docs test treats it."""
    lines = markdown.splitlines()
    blocks: list[Block] = []
    i, last_text = 0, ""
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", line)
        if not fence:
            if line.strip():
                last_text = line.strip()
            i += 1
            continue
        indent, mark, lang = fence.groups()
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(mark):
            j += 1
        body = [b[len(indent):] if b.startswith(indent) else b for b in lines[i + 1:j]]
        if lang.lower() in SHELL_LANGS:
            m = MARKER.match(last_text)
            mode = {"not run": "skip", "runs in the background": "background"}[m.group(1)] if m else "run"
            blocks.append(Block(i + 1, mode, m.group(2) if m else "", parse_block(body, i + 1), "\n".join(body)))
        last_text = ""
        i = j + 1
    return blocks


# -- matching --------------------------------------------------------------------------------
_VOLATILE = re.compile(r"[A-Za-z0-9+/=]*\d[A-Za-z0-9+/=]*")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROGRESS = re.compile(r"^\[\s*\d+(\.\d+)?s\] … ")  # the CLI's "still working" lines


def _line_pattern(text: str) -> tuple[str, list[str]]:
    """A regex for one expected line, and the doc's text of each capture group in order."""
    out, docs, i = [], [], 0
    while i < len(text):
        named = _PLACEHOLDER.match(text, i)
        if named and (i == 0 or not text[i - 1].isalnum()):
            out.append(f"({PLACEHOLDERS[named.group(1)]})")
            docs.append(named.group(1))
            i = named.end()
        else:
            ch = text[i]
            if text.startswith("…", i) or text.startswith("...", i):
                out.append(".*?")
                i += 1 if ch == "…" else 3
            elif ch.isspace():
                j = i
                while j < len(text) and text[j].isspace():
                    j += 1
                # Spacing next to an ellipsis is part of what varies.
                near = (out and out[-1] == ".*?") or text.startswith(ELLIPSIS, j)
                out.append(r"\s+" if out and not near else r"\s*")
                i = j
            else:
                m = _VOLATILE.match(text, i) if (ch.isalnum() or ch in "+/=") else None
                if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] in "+/=")):
                    word = m.group(0)
                    if len(word) >= 8:  # an id, key, hash, fingerprint: any value of its alphabet
                        out.append(r"([A-Za-z0-9+/=]+)")
                        docs.append(word)
                    else:  # a short word with numbers in it (t2.nano, 512, 28T15): numbers vary
                        for part in re.split(r"(\d+)", word):
                            if part.isdigit():
                                out.append(r"(\d+)")
                                docs.append(part)
                            elif part:
                                out.append(re.escape(part))
                    i = m.end()
                else:
                    out.append(re.escape(ch))
                    i += 1
    return "".join(out), docs


def normalize(text: str) -> list[str]:
    """Output lines as compared: no colours, no trailing blanks, no blank lines, no progress."""
    lines = _ANSI.sub("", text).replace("\r\n", "\n").split("\n")
    return [ln.rstrip() for ln in lines if ln.strip() and not PROGRESS.match(ln)]


def _bind(docs: list[str], m: re.Match, bindings: dict[str, str]) -> None:
    for doc, got in zip(docs, m.groups()):
        if doc in PLACEHOLDERS or (doc != got and (len(doc) >= 8 or (doc.isdigit() and len(doc) >= 4))):
            bindings[doc] = got


def match_output(expected: list[str], actual: str, bindings: dict[str, str]) -> str | None:
    """None when ACTUAL shows what EXPECTED promises (binding what varies), else why not."""
    exp = [e.rstrip() for e in expected if e.strip()]
    act = normalize(actual)
    compiled = [None if e.strip() in ELLIPSIS else (lambda p: (re.compile(p[0] + r"\s*$"), p[1]))(_line_pattern(e.strip()))
                for e in exp]
    found: dict[str, str] = {}
    best = [0, 0]  # how far a match got, for the message

    def walk(ei: int, ai: int, got: dict[str, str]) -> dict[str, str] | None:
        if ei > best[0]:
            best[:] = [ei, ai]
        if ei == len(compiled):
            return got if ai == len(act) else None
        if compiled[ei] is None:  # … : any number of lines
            for k in range(ai, len(act) + 1):
                r = walk(ei + 1, k, got)
                if r is not None:
                    return r
            return None
        if ai >= len(act):
            return None
        rx, docs = compiled[ei]
        m = rx.match(act[ai].strip())
        if not m:
            return None
        mine = dict(got)
        _bind(docs, m, mine)
        return walk(ei + 1, ai + 1, mine)

    result = walk(0, 0, found)
    if result is None:
        ei, ai = best
        want = exp[ei] if ei < len(exp) else "(end of output)"
        have = act[ai] if ai < len(act) else "(end of output)"
        return f"output line {ai + 1} does not match the doc's line {ei + 1}:\n  doc:    {want}\n  actual: {have}"
    bindings.update(result)
    return None


def match_fragment(fragment: str, actual: str, bindings: dict[str, str]) -> str | None:
    """None when some stretch of the output shows FRAGMENT (JSON spacing aside)."""
    pat, docs = _line_pattern(fragment.replace(": ", ":").replace(", ", ","))
    flat = re.sub(r'\s*([:,])\s*', r"\1", " ".join(normalize(actual)))
    m = re.search(pat, flat)
    if m is None:
        return f"the output does not show `{fragment}`:\n  actual: {flat[:600]}"
    _bind(docs, m, bindings)
    return None


def substitute(command: str, bindings: dict[str, str]) -> str:
    """The command with the doc's values replaced by this run's (longest first)."""
    command = _PLACEHOLDER.sub(lambda m: bindings.get(m.group(1), m.group(1)), command)
    for doc in sorted(bindings, key=len, reverse=True):
        if doc not in PLACEHOLDERS:
            command = re.sub(rf"(?<![A-Za-z0-9]){re.escape(doc)}(?![A-Za-z0-9])", bindings[doc], command)
    return command


def unbound(command: str) -> list[str]:
    """Named placeholders no output has bound yet."""
    return _PLACEHOLDER.findall(command)
