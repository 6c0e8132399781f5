"""The API token admin: scopes chosen and shown, tokens for other users.

Families:

- who makes a token (a user with the token permissions; the same with
  ``imagegen.add_token_for_others``; a superuser) x for whom (themselves,
  another user, a superuser) -> made for the target, made for the maker
  (no user field: a posted one is ignored), or a form error and nothing made;
- who looks (the same three) x whose token (their own, another user's) ->
  listed, opened, revoked and deleted, or none of these;
- the scopes chosen on the add form: every subset -> stored in one order
  and shown in the list; none, or an unknown one -> a form error and nothing
  made; changing a token's scopes afterwards -> ignored (they are read-only).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from django.urls import reverse

from imagegen.api import auth
from imagegen.models import ApiToken

from .factories import EDITOR, make_user, messages_of

# On every database: the SQLite pass runs them too.
pytestmark = [pytest.mark.services, pytest.mark.django_db]

TOKEN_PERMS = tuple(f"imagegen.{a}_apitoken" for a in ("add", "view", "change", "delete"))
FOR_OTHERS = "imagegen.add_token_for_others"
ADD = reverse("admin:imagegen_apitoken_add")
CHANGELIST = reverse("admin:imagegen_apitoken_changelist")
MAKERS = ("plain", "for_others", "superuser")


def make_person(django_user_model: Any, kind: str, username: str) -> Any:
    if kind == "superuser":
        return django_user_model.objects.create_superuser(username, password="password")
    extra = (FOR_OTHERS,) if kind == "for_others" else ()
    return make_user(django_user_model, *EDITOR, *TOKEN_PERMS, *extra, username=username)


def add_form(**fields: Any) -> dict[str, Any]:
    return {"name": "deploy", "expires_at_0": "", "expires_at_1": "", **fields}


@pytest.mark.parametrize("target", ["self", "other", "superuser"])
@pytest.mark.parametrize("maker", MAKERS)
def test_who_may_make_tokens_for_whom(client, django_user_model, maker, target):
    me = make_person(django_user_model, maker, "me")
    whom = {
        "self": me,
        "other": make_person(django_user_model, "plain", "someone"),
        "superuser": make_person(django_user_model, "superuser", "root2"),
    }[target]
    client.force_login(me)
    form = client.get(ADD).content.decode()
    may_choose = maker != "plain"
    assert ('name="user"' in form) == may_choose
    response = client.post(ADD, add_form(user=whom.pk, scopes=["read"]))
    refused = maker == "for_others" and target == "superuser"
    if refused:
        assert response.status_code == 200
        assert (
            "Only a superuser may make tokens for a superuser."
            in (response.context["adminform"].form.errors["user"])
        )
        assert not ApiToken.objects.exists()
        return
    assert response.status_code == 302, response.content
    token = ApiToken.objects.get()
    # Without the permission the posted user is ignored: the token is the maker's.
    assert token.user == (whom if may_choose else me)
    assert token.scopes == ["read"]


@pytest.mark.parametrize("owner", ["self", "other"])
@pytest.mark.parametrize("viewer", MAKERS)
def test_who_sees_and_revokes_whose_tokens(client, django_user_model, viewer, owner):
    me = make_person(django_user_model, viewer, "me")
    holder = me if owner == "self" else make_person(django_user_model, "plain", "someone")
    token, _raw = auth.create_token(holder, "the-token")
    manages = owner == "self" or viewer != "plain"
    client.force_login(me)
    assert ("the-token" in client.get(CHANGELIST).content.decode()) == manages
    change = reverse("admin:imagegen_apitoken_change", args=[token.pk])
    assert client.get(change).status_code == (200 if manages else 302)
    delete = reverse("admin:imagegen_apitoken_delete", args=[token.pk])
    assert client.get(delete).status_code == (200 if manages else 302)
    client.post(CHANGELIST, {"action": "revoke_tokens", "_selected_action": [token.pk]})
    assert ApiToken.objects.get(pk=token.pk).revoked == manages


SUBSETS = [
    combination
    for size in range(1, len(auth.SCOPES) + 1)
    for combination in itertools.permutations(auth.SCOPES, size)
]


@pytest.mark.parametrize("scopes", SUBSETS, ids="+".join)
def test_scopes_are_chosen_and_shown(client, django_user_model, scopes):
    me = make_person(django_user_model, "plain", "me")
    client.force_login(me)
    form = client.get(ADD).content.decode()
    for name in auth.SCOPES:
        assert re.search(rf'type="checkbox" name="scopes" value="{name}"', form), name
    response = client.post(ADD, add_form(scopes=list(scopes)), follow=True)
    raw = re.search(r"<code>(ig_[A-Za-z0-9_-]{43})</code>", " ".join(messages_of(response)))
    assert raw, response.content
    token = ApiToken.objects.get()
    stored = [name for name in auth.SCOPES if name in scopes]
    assert token.scopes == stored
    assert f'<td class="field-scopes_display">{", ".join(stored)}</td>' in (
        client.get(CHANGELIST).content.decode()
    )


@pytest.mark.parametrize(
    "scopes",
    [[], ["admin"], ["read", "write"], ["READ"]],
    ids=["none", "unknown", "one-unknown", "case"],
)
def test_bad_scopes_are_a_form_error(client, django_user_model, scopes):
    client.force_login(make_person(django_user_model, "plain", "me"))
    response = client.post(ADD, add_form(scopes=scopes))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["scopes"]
    assert not ApiToken.objects.exists()


def test_scopes_cannot_grow_after_the_token_is_made(client, django_user_model):
    me = make_person(django_user_model, "plain", "me")
    token, _raw = auth.create_token(me, "narrow", scopes=["read"])
    client.force_login(me)
    change = reverse("admin:imagegen_apitoken_change", args=[token.pk])
    assert "read" in client.get(change).content.decode()
    response = client.post(
        change,
        {"name": "renamed", "scopes": list(auth.SCOPES), "expires_at_0": "", "expires_at_1": ""},
    )
    assert response.status_code == 302, response.content
    token.refresh_from_db()
    assert (token.name, token.scopes) == ("renamed", ["read"])
