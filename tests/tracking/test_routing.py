"""Which request completes which task (SPEC §2), and that tracking never hurts the response."""

import logging

import pytest
from django.urls import reverse

from apps.tasks.models import TaskConfig
from apps.tracking import middleware
from apps.tracking.routing import Route, RouteTable, build_route_table
from tests.factories import TaskConfigFactory, UserFactory


def make_route(config_id, pattern, *, method="POST", priority=0, group="", task_type=None, **success) -> Route:
    import re

    return Route(
        config_id=config_id,
        task_type=task_type or f"t{config_id}",
        method=method,
        regex=re.compile(pattern),
        id_group_name=group,
        priority=priority,
        status_min=success.get("status_min", 200),
        status_max=success.get("status_max", 299),
        json_field=success.get("json_field", ""),
        json_value=success.get("json_value", ""),
    )


class TestRouteTable:
    def test_highest_priority_wins_then_lowest_id(self):
        table = RouteTable(
            [
                make_route(3, r"/posts/\d+/", priority=0),
                make_route(2, r"/posts/\d+/", priority=5),
                make_route(1, r"/posts/\d+/", priority=5),
            ]
        )
        assert table.match("POST", "/posts/7/").route.config_id == 1

    def test_regex_must_match_the_whole_path(self):
        table = RouteTable([make_route(1, r"/posts/")])
        assert table.match("POST", "/posts/") is not None
        assert table.match("POST", "/posts/7/") is None
        assert table.match("POST", "/x/posts/") is None

    def test_method_compares_case_insensitively_and_must_match(self):
        table = RouteTable([make_route(1, r"/checkin/", method="POST")])
        assert table.match("post", "/checkin/") is not None
        assert table.match("GET", "/checkin/") is None

    def test_business_id_is_the_named_group(self):
        table = RouteTable([make_route(1, r"/posts/(?P<post_id>\d+)/share/", group="post_id")])
        assert table.match("POST", "/posts/42/share/").business_id == "42"

    def test_optional_group_that_did_not_take_part_gives_empty_id(self):
        table = RouteTable([make_route(1, r"/posts/(?:(?P<post_id>\d+)/)?share/", group="post_id")])
        assert table.match("POST", "/posts/share/").business_id == ""

    def test_config_without_group_gives_empty_id(self):
        table = RouteTable([make_route(1, r"/posts/\d+/")])
        assert table.match("POST", "/posts/9/").business_id == ""


class TestSuccessCriterion:
    def test_status_range(self):
        route = make_route(1, "/x/", status_min=302, status_max=303)
        assert route.succeeded(302)
        assert not route.succeeded(200)
        assert not route.succeeded(404)

    def test_json_field_must_equal_configured_value(self):
        route = make_route(1, "/x/", json_field="code", json_value="0")
        assert route.succeeded(200, {"code": 0})
        assert route.succeeded(200, {"code": "0"})
        assert not route.succeeded(200, {"code": 1})
        assert not route.succeeded(200, {"other": 0})
        assert not route.succeeded(200, None)
        assert not route.succeeded(500, {"code": 0})

    @pytest.mark.parametrize(
        ("json_value", "body_value", "expected"),
        [
            ("-3", -3, True),
            ("0", False, False),  # JSON false is not the number 0
            ("01", 1, False),  # compared as JSON spells it
            ("true", True, True),
            ("true", 1, False),
            ("1.5", 1.5, True),
            ("1", 1.0, False),
        ],
    )
    def test_json_value_is_compared_as_json_spells_the_field(self, json_value, body_value, expected):
        route = make_route(1, "/x/", json_field="code", json_value=json_value)
        assert route.succeeded(200, {"code": body_value}) is expected


@pytest.mark.django_db
def test_only_in_use_configs_are_routed():
    TaskConfigFactory(task_type="a", interface_name=r"^/a/$", status=TaskConfig.Status.IN_USE)
    TaskConfigFactory(task_type="b", interface_name=r"^/b/$", status=TaskConfig.Status.EDITING)
    TaskConfigFactory(task_type="c", interface_name=r"^/c/$", status=TaskConfig.Status.DEPRECATED)
    table = build_route_table()
    assert table.match("POST", "/a/").route.task_type == "a"
    assert table.match("POST", "/b/") is None
    assert table.match("POST", "/c/") is None


@pytest.fixture
def captured(monkeypatch):
    """Events the middleware hands off, captured instead of sent to the broker."""
    events = []
    monkeypatch.setattr(middleware, "event_dispatch", lambda *, event: events.append(event))
    return events


@pytest.fixture
def site_configs(db):
    TaskConfigFactory(task_type="sign-in", interface_name=r"^/checkin/$", success_json_field="code", success_json_value="0")
    TaskConfigFactory(
        task_type="share",
        interface_name=r"^/posts/(?P<post_id>\d+)/share/$",
        id_group_name="post_id",
        success_status_min=302,
        success_status_max=303,
    )


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.mark.django_db
def any_thing_config() -> None:
    """GET /any/<thing>/ completes task `any`, its business id the path's `thing` (any status up to 404)."""
    TaskConfigFactory(
        task_type="any", method="GET", interface_name=r"^/any/(?P<thing>[^/]+)/$", id_group_name="thing", success_status_max=404
    )


class TestMiddleware:
    def test_successful_request_by_signed_in_user_makes_one_event(self, client, alice, site_configs, captured):
        client.force_login(alice)
        response = client.post(reverse("checkin"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9", HTTP_CF_IPCOUNTRY="CN")
        assert response.json()["code"] == 0
        [event] = captured
        assert (event.user_id, event.task_type, event.business_id) == (alice.pk, "sign-in", "")
        assert (event.method, event.path, event.status) == ("POST", "/checkin/", 200)
        assert (event.lang_type, event.country, event.location) == ("zh-CN", "CN", "127.0.0.1")

    def test_json_success_criterion_refuses_second_sign_in(self, client, alice, site_configs, captured):
        client.force_login(alice)
        client.post(reverse("checkin"))
        second = client.post(reverse("checkin"))
        assert second.json()["code"] == 1
        assert len(captured) == 1

    def test_business_id_comes_from_the_path(self, client, alice, site_configs, captured):
        from apps.community.models import Post

        post = Post.objects.create(author=alice, title="t", body="b")
        client.force_login(alice)
        client.post(reverse("post-share", args=[post.pk]))
        assert [e.business_id for e in captured] == [str(post.pk)]

    @pytest.mark.parametrize(("thing", "why"), [("x" * 256, "longer than 255"), ("a%00b", "control character")])
    def test_a_business_id_that_cannot_be_stored_whole_makes_no_event(self, client, alice, captured, caplog, thing, why):
        # Before, an over-long one was cut to 255 characters: two objects could then collide (G8).
        any_thing_config()
        client.force_login(alice)
        client.get(f"/any/{thing}/")
        assert captured == []
        assert why in caplog.text

    def test_a_business_id_of_255_characters_is_kept_whole(self, client, alice, captured):
        any_thing_config()
        client.force_login(alice)
        client.get(f"/any/{'x' * 255}/", headers={"accept-language": "x" * 40 + ",en"})
        assert [(e.business_id, e.lang_type) for e in captured] == [("x" * 255, "")]

    def test_anonymous_requests_make_no_event(self, client, site_configs, captured):
        response = client.post(reverse("checkin"))
        assert response.status_code == 401
        assert captured == []

    def test_failed_requests_make_no_event(self, client, alice, site_configs, captured):
        client.force_login(alice)
        response = client.post("/posts/999999/share/")
        assert response.status_code == 404
        assert captured == []

    def test_untracked_requests_make_no_event(self, client, alice, site_configs, captured):
        client.force_login(alice)
        client.get(reverse("home"))
        assert captured == []

    def test_user_logged_in_by_the_view_is_seen(self, client, alice, captured):
        TaskConfigFactory(task_type="login", interface_name=r"^/accounts/login/$", success_status_min=302, success_status_max=302)
        client.post(reverse("login"), {"username": "alice", "password": "demo12345"})
        assert [e.task_type for e in captured] == ["login"]

    def test_a_fault_inside_tracking_never_breaks_the_response(self, client, alice, site_configs, monkeypatch, caplog):
        def broken(*, event):
            raise RuntimeError("broker exploded")

        monkeypatch.setattr(middleware, "event_dispatch", broken)
        client.force_login(alice)
        with caplog.at_level(logging.ERROR, logger="apps.tracking.middleware"):
            response = client.post(reverse("checkin"))
        assert response.status_code == 200
        assert response.json()["code"] == 0
        assert "tracking failed for POST /checkin/" in caplog.text

    def test_a_fault_in_routing_never_breaks_the_response(self, client, alice, monkeypatch):
        def broken(request, response):
            raise ValueError("bad table")

        monkeypatch.setattr(middleware, "event_from_request", broken)
        client.force_login(alice)
        assert client.get(reverse("home")).status_code == 200

    def test_config_changes_are_seen_without_restart(self, client, alice, site_configs, captured):
        client.force_login(alice)
        TaskConfig.objects.filter(task_type="sign-in").update(status=TaskConfig.Status.DEPRECATED)
        # updated_at moves on save(); a queryset update does not, so touch it the way the admin would.
        config = TaskConfig.objects.get(task_type="sign-in")
        config.save()
        client.post(reverse("checkin"))
        assert captured == []


class TestFirstSegmentIndex:
    @pytest.mark.parametrize(
        ("pattern", "segment"),
        [
            (r"^/posts/(?P<id>\d+)/share/$", "posts"),
            (r"^/checkin/$", "checkin"),
            (r"/checkin/", "checkin"),
            (r"^/posts/?$", "posts"),
            (r"^/posts$", "posts"),
            (r"^/$", ""),
            (r"^/posts?/$", None),
            (r"^/po(st|ll)/$", None),
            (r"^/a/|^/b/", None),
            (r"(?i)^/posts/$", None),
            (r"^/(?i:posts)/$", None),
            (r"^/posts\.json$", None),
            (r"^.*/share/$", None),
            (r"^/a{2}/$", None),
        ],
    )
    def test_first_segment(self, pattern, segment):
        from apps.tracking.routing import first_segment

        assert first_segment(pattern) == segment

    def test_wildcard_and_segment_routes_keep_one_priority_order(self):
        table = RouteTable(
            [
                make_route(1, r"^/posts/\d+/$", priority=1),
                make_route(2, r"^.*/\d+/$", priority=5),
                make_route(3, r"^/posts/\d+/$", priority=9),
                make_route(4, r"^/other/\d+/$", priority=0),
            ]
        )
        assert table.match("POST", "/posts/1/").route.config_id == 3
        assert table.match("POST", "/other/1/").route.config_id == 2
        assert table.match("POST", "/nowhere/1/").route.config_id == 2
        assert table.match("POST", "/nowhere/") is None

    def test_index_agrees_with_a_plain_scan(self):
        import random

        rng = random.Random(7)
        patterns = [
            r"^/posts/(?P<id>\d+)/$",
            r"^/posts/$",
            r"^/p(os)?ts/$",
            r"^/(?P<s>\w+)/x/$",
            r"^/a/b/?$",
            r"^/posts$",
            r"^/$",
        ]
        routes = [make_route(i, p, priority=rng.randint(0, 3), group="id" if "id" in p else "") for i, p in enumerate(patterns)]
        table = RouteTable(routes)
        paths = ["/posts/1/", "/posts/", "/pts/", "/posts", "/a/b", "/a/b/", "/q/x/", "/", "/posts/x/", ""]
        for path in paths:
            expected = next(
                (r for r in sorted(routes, key=lambda r: (-r.priority, r.config_id)) if r.regex.fullmatch(path)), None
            )
            found = table.match("POST", path)
            assert (found.route if found else None) == expected, path
