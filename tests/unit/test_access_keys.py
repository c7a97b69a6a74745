"""Credential lifecycle in emulator/accounts.py: two keys per account, Active/Inactive,
delete, disabled accounts; every check goes through secret_for, which refuses them all."""
from __future__ import annotations

import sqlite3

import pytest

from emulator.accounts import Accounts
from emulator.errors import InvalidParameter, InvalidState, NotFound, QuotaExceeded, Unauthorized
from emulator.state import Store


@pytest.fixture
def accounts(tmp_path):
    return Accounts(Store(tmp_path / "s.db"), tmp_path / "master.key")


def _refused(accounts, key, code):
    with pytest.raises(Unauthorized) as e:
        accounts.secret_for(key.key_id)
    assert e.value.code == code
    with pytest.raises(Unauthorized):
        accounts.authenticate(key.key_id, key.secret)


def test_two_keys_at_most_and_listing_never_shows_a_secret(accounts):
    alice, first = accounts.create("alice")
    second = accounts.create_key(alice.id)
    with pytest.raises(QuotaExceeded) as e:
        accounts.create_key(alice.id)
    assert e.value.code == "LimitExceeded"
    listed = [k.to_dict() for k in accounts.list_keys(alice.id)]
    assert [k["access_key_id"] for k in listed] == [first.key_id, second.key_id]
    assert all(k["status"] == "Active" and "secret" not in str(k).lower() for k in listed)
    assert first.secret not in str(listed) and second.secret not in str(listed)
    assert accounts.authenticate(second.key_id, second.secret) == alice


def test_inactive_keys_are_refused_and_can_come_back(accounts):
    alice, key = accounts.create("alice")
    accounts.set_key_status(key.key_id, "Inactive")
    _refused(accounts, key, "InvalidAccessKeyId")
    accounts.set_key_status(key.key_id, "Active")
    assert accounts.authenticate(key.key_id, key.secret) == alice
    with pytest.raises(InvalidParameter):
        accounts.set_key_status(key.key_id, "inactive")  # IAM's spelling only


def test_deleted_keys_are_gone_and_free_a_slot(accounts):
    alice, key = accounts.create("alice")
    spare = accounts.create_key(alice.id)
    accounts.delete_key(key.key_id)
    _refused(accounts, key, "InvalidAccessKeyId")
    with pytest.raises(NotFound):
        accounts.delete_key(key.key_id)
    accounts.create_key(alice.id)
    assert len(accounts.list_keys(alice.id)) == 2
    assert accounts.authenticate(spare.key_id, spare.secret) == alice


def test_another_accounts_key_is_not_found_when_scoped(accounts):
    alice, key = accounts.create("alice")
    bob, _ = accounts.create("bob")
    with pytest.raises(NotFound) as e:
        accounts.key(key.key_id, bob.id)
    assert e.value.code == "NoSuchEntity"
    assert accounts.key(key.key_id, alice.id).account_id == alice.id
    assert accounts.key(key.key_id).account_id == alice.id  # unscoped: the admin's view


def test_disabled_accounts_lose_every_key_but_not_the_last_admin(accounts):
    admin, admin_key = accounts.create("root", role="admin")
    alice, key = accounts.create("alice")
    spare = accounts.create_key(alice.id)
    assert accounts.set_disabled(alice.id, True).disabled
    _refused(accounts, key, "AccountDisabled")
    _refused(accounts, spare, "AccountDisabled")
    assert accounts.get(alice.id).to_dict()["disabled"] is True
    assert not accounts.set_disabled(alice.id, False).disabled
    assert accounts.authenticate(key.key_id, key.secret) == accounts.get(alice.id)
    with pytest.raises(InvalidState) as e:
        accounts.set_disabled(admin.id, True)
    assert e.value.code == "LastAdmin"
    other, _ = accounts.create("root2", role="admin")
    accounts.set_disabled(admin.id, True)  # another admin remains enabled
    with pytest.raises(InvalidState):
        accounts.set_disabled(other.id, True)
    with pytest.raises(InvalidParameter):
        accounts.set_disabled(alice.id, "yes")


def test_key_status_is_constrained_in_the_database_too(tmp_path, accounts):
    alice, key = accounts.create("alice")
    con = sqlite3.connect(tmp_path / "s.db")
    with pytest.raises(sqlite3.IntegrityError):
        con.execute("UPDATE access_keys SET status='Maybe' WHERE key_id=?", (key.key_id,))
    con.close()


def test_lost_admin_credentials_file_gives_a_fresh_key_even_past_two(tmp_path, accounts):
    creds = tmp_path / "credentials"
    admin = accounts.ensure_admin(creds)
    accounts.create_key(admin.id)
    creds.unlink()
    accounts.ensure_admin(creds)
    assert len(accounts.list_keys(admin.id)) == 3
