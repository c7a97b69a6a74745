"""The one-port app imports and assembles every front end: a merge that breaks an import
fails here in a second, not at the first `pocketcloud serve`."""
from __future__ import annotations

from api import create_app
from emulator.config import Config


def test_create_app_wires_every_protocol(tmp_path):
    app = create_app(Config(home=tmp_path / "home"))
    assert {"ec2", "s3"} <= set(app.protocols)
    rules = {r.rule for r in app.flask.url_map.iter_rules()}
    assert any(r.startswith("/api/v1/instances") for r in rules)
    assert any(r.startswith("/ui") for r in rules)
