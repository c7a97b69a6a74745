import pytest

from emulator import validation as v
from emulator.errors import InvalidParameter


def test_ids():
    assert v.instance_id(v.new_instance_id())
    for bad in ["i-123", "i-0123456789ABCDEF0", "x-0123456789abcdef0", None, 5, "i-0123456789abcdef0\n"]:
        with pytest.raises(InvalidParameter):
            v.instance_id(bad)


@pytest.mark.parametrize("bad", ["", "-x", "a b", "a/b", "a" * 64, "<x>", "a'b", None, 3])
def test_names(bad):
    with pytest.raises(InvalidParameter):
        v.name(bad)


def test_ports():
    assert v.ports([80, {"guest": 22, "host": 2222}])[1].host == 2222
    for bad in [[{"guest": 70000}], [{"guest": True}], [{"guest": 80, "host": 22}], [{"guest": 1, "proto": "x"}],
                [{"guest": 80, "protocol": "udp"}], "80", [{"guest": 1, "host": 3000}, {"guest": 2, "host": 3000}]]:
        with pytest.raises(InvalidParameter):
            v.ports(bad)


def test_command_and_user_data():
    assert v.command("echo hi") == ["/bin/sh", "-c", "echo hi"]
    assert v.command(["ls", "-l"]) == ["ls", "-l"]
    for bad in ["", [], [1], None, ["a\x00"]]:
        with pytest.raises(InvalidParameter):
            v.command(bad)
    with pytest.raises(InvalidParameter):
        v.user_data("x" * (16 * 1024 + 1))
