"""The docs-as-tests convention (tests/docs/mdrun.py): which blocks run, how a command is
cut out of a block, and how output is matched and values bound."""
from __future__ import annotations

from tests.docs import mdrun

DOC = '''# A doc

```
$ pocketcloud instances run tiny --name web --port 80
ID                   NAME  STATE    PORTS
i-da3eb7a4046781bc8  web   running  127.0.0.1:30452->80
$ curl -s 127.0.0.1:30452/
hello
```

*(not run by the docs test: it blocks until Ctrl-C)*

```sh
make forever
```

```text
$ this is an illustration, not a command
```

*(runs in the background in the docs test: the test starts the server this way)*

```
$ make up
pocketcloud on http://127.0.0.1:4566  (home ~/.pocketcloud)
```

```
export PATH=$PWD/.venv/bin:$PATH     # what's next: a comment with a quote
curl -s localhost:4566/api/v1/instances -d '{
  "name": "web"}'
# -> {"id": "i-...", "state": "running"}
cat > a.sh <<'EOF'
echo one; echo "two"
EOF
```
'''


def test_blocks_and_their_treatment():
    blocks = mdrun.parse(DOC)
    assert [(b.mode, b.reason) for b in blocks] == [
        ("run", ""), ("skip", "it blocks until Ctrl-C"), ("background", "the test starts the server this way"),
        ("run", "")]
    first = blocks[0].steps
    assert [s.command for s in first] == ["pocketcloud instances run tiny --name web --port 80",
                                          "curl -s 127.0.0.1:30452/"]
    assert first[1].expected == ["hello"]
    plain = blocks[3].steps
    assert [s.command.splitlines()[0] for s in plain] == [
        "export PATH=$PWD/.venv/bin:$PATH     # what's next: a comment with a quote",
        "curl -s localhost:4566/api/v1/instances -d '{", "cat > a.sh <<'EOF'"]
    assert plain[1].command.endswith('"name": "web"}\'') and plain[1].fragments == ['{"id": "i-...", "state": "running"}']
    assert plain[2].command.splitlines()[-1] == "EOF" and not plain[2].prompt


def test_output_matches_with_values_of_the_same_shape_and_binds_them():
    b = {}
    doc = ["ID                   NAME  STATE    PORTS", "i-da3eb7a4046781bc8  web   running  127.0.0.1:30452->80"]
    run = "ID                   NAME  STATE    PORTS\ni-0f3c2b1a09876e5d4  web   running  127.0.0.1:21877->80\n"
    assert mdrun.match_output(doc, run, b) is None
    assert b["da3eb7a4046781bc8"] == "0f3c2b1a09876e5d4" and b["30452"] == "21877"
    assert mdrun.substitute("curl -s 127.0.0.1:30452/ && x i-da3eb7a4046781bc8", b) == \
        "curl -s 127.0.0.1:21877/ && x i-0f3c2b1a09876e5d4"


def test_words_must_match_and_ellipses_stand_for_what_varies():
    b = {}
    assert "does not match" in mdrun.match_output(["i-da3eb7a4046781bc8  web  running"],
                                                  "i-0f3c2b1a09876e5d4  web  stopped", b)
    assert "does not match" in mdrun.match_output(["t2.nano"], "t2.micro", b)
    assert mdrun.match_output(["first", "…", "last: …"], "first\na\nb\nlast: 12 MiB, whatever\n", b) is None
    assert mdrun.match_output(["[   0.0s] started"], "[  12.3s] started", b) is None
    assert "end of output" in mdrun.match_output(["one", "two"], "one\n", b)


def test_placeholders_bind_from_output_and_fill_later_commands():
    b = {}
    assert mdrun.match_fragment('{"id": "i-...", "ports": [{"guest": 80, "host": 2xxxx, …}]}',
                                '{"id":"i-0123456789abcdef0","ports":[{"guest":80,"host":23456,"host_ip":"x"}]}',
                                b) is None
    assert mdrun.substitute("curl 127.0.0.1:2xxxx/ ; rm i-...", b) == "curl 127.0.0.1:23456/ ; rm i-0123456789abcdef0"
    assert mdrun.unbound("echo ami-...") == ["ami-..."]


def test_progress_lines_are_not_part_of_the_output():
    run = "[   0.5s] … launching tiny as a vm: the server is starting it\n[   2.1s] … launching\n" \
          "[   8.9s] i-0123456789abcdef0: running\nID  NAME\n"
    assert mdrun.match_output(["[   8.8s] i-0f3c2b1a09876e5d4: running", "ID  NAME"], run, {}) is None
