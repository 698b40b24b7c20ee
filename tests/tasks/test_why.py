"""The admin's "Why no points?" page: what each rule decided for a user's completion, and why."""

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from apps.ledger.models import ScoreRecord
from apps.tasks.models import UserTaskRecord
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_park, event_process
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "admin:tasks_usertaskrecord_why"


def share(user, post_id: str, when) -> Event:
    return Event(
        event_id=uuid.uuid4(),
        user_id=user.pk,
        task_type="share",
        occurred_at=when,
        business_id=post_id,
        method="POST",
        path=f"/posts/{post_id}/share/",
        status=200,
    )


def local(when) -> str:
    """The time as an operator types it into the form (the site's time zone, to the minute)."""
    return timezone.localtime(when).strftime("%Y-%m-%dT%H:%M")


def why(client, **params) -> str:
    response = client.get(reverse(URL), params)
    assert response.status_code == 200
    return response.content.decode()


def verdicts(html: str) -> dict[str, str]:
    """Rule code -> the text of its row, tags stripped."""
    rows = re.findall(r'<tr class="verdict[^"]*">(.*?)</tr>', html, re.S)
    texts = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]
    return {text.split(" ", 1)[0]: text for text in texts}


@pytest.fixture
def when():
    return timezone.now().replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)


@pytest.fixture
def alice(db, when):
    """Alice shared two posts: the second was awarded by one rule and stopped by the other's daily limit."""
    TaskConfigFactory(task_type="share", interface_name=r"^/posts/(?P<post_id>\d+)/share/$", id_group_name="post_id")
    ScoreRuleFactory(score_type="share-daily", task_type="share", points=5, award_limit_per_period=1)
    ScoreRuleFactory(score_type="share-each", task_type="share", points=1)
    alice = UserFactory(username="alice")
    event_process(event=share(alice, "41", when))
    event_process(event=share(alice, "42", when + timedelta(minutes=5)))
    return alice


def second_completion(user) -> UserTaskRecord:
    return UserTaskRecord.objects.get(user=user, business_id="42")


class TestACompletion:
    def test_shows_the_award_of_one_rule_and_the_limit_of_the_other(self, client, operator, alice):
        record = second_completion(alice)
        html = why(client, username="alice", completion=record.pk)
        rows = verdicts(html)
        assert set(rows) == {"share-daily", "share-each"}
        assert "counted, no award" in rows["share-daily"]
        assert "the period's award limit was already reached" in rows["share-daily"].replace("&#x27;", "'")
        assert "awarded 1 point" in rows["share-each"]
        entry = ScoreRecord.objects.get(completion=record, rule__score_type="share-each")
        assert reverse("admin:ledger_scorerecord_change", args=[entry.pk]) in html
        assert entry.serial_number in rows["share-each"] and rows["share-daily"].endswith("-")

    def test_lists_the_users_recent_completions_to_pick_from(self, client, operator, alice):
        html = why(client, username="alice")
        for record in UserTaskRecord.objects.filter(user=alice):
            assert f"completion={record.pk}" in html
        assert not verdicts(html)

    def test_someone_elses_completion_is_not_shown(self, client, operator, alice):
        UserFactory(username="bob")
        html = why(client, username="bob", completion=second_completion(alice).pk)
        assert "This user has no such completion." in html and not verdicts(html)

    def test_an_unknown_username_is_refused(self, client, operator, alice):
        html = why(client, username="Alice")  # exact: case matters
        assert "No user is called Alice." in html


class TestARequestAndATime:
    def test_finds_the_completion_near_the_time(self, client, operator, alice, when):
        html = why(client, username="alice", method="POST", path="/posts/42/share/", around=local(when + timedelta(minutes=40)))
        assert f'id="completion-{second_completion(alice).pk}"' in html
        assert html.count('class="module why-completion"') == 1  # post 41 is another business object
        assert "awarded 1 point" in verdicts(html)["share-each"]

    def test_a_path_that_matches_no_config_says_so(self, client, operator, alice, when):
        html = why(client, username="alice", method="POST", path="/posts/42/like/", around=local(when))
        assert 'id="why-no-match"' in html and "matches no task config in use" in html
        assert not verdicts(html)

    def test_a_matched_request_without_a_completion_says_so_and_shows_a_parked_event(self, client, operator, alice, when):
        params = {"username": "alice", "method": "POST", "path": "/posts/43/share/", "around": local(when)}
        html = why(client, **params)
        assert 'id="why-no-completion"' in html and "No completion of share was recorded" in html
        assert 'id="why-no-pending"' in html and 'id="why-pending"' not in html

        parked = event_park(payload=share(alice, "43", when + timedelta(minutes=2)).to_payload(), error="boom", attempts=5)
        html = why(client, **params)
        assert 'id="why-pending"' in html and "parked after failing" in html
        assert reverse("admin:tracking_failedevent_change", args=[parked.pk]) in html

    def test_a_completion_outside_the_hour_is_not_found(self, client, operator, alice, when):
        html = why(client, username="alice", method="POST", path="/posts/42/share/", around=local(when + timedelta(hours=2)))
        assert 'id="why-no-completion"' in html and not verdicts(html)

    def test_a_path_needs_a_time(self, client, operator, alice):
        html = why(client, username="alice", method="POST", path="/posts/42/share/")
        assert "Say about when the request was made." in html


class TestAccess:
    def test_needs_the_view_permission_on_completions(self, client, alice):
        clerk = UserFactory(username="clerk", is_staff=True)
        client.force_login(clerk)
        assert client.get(reverse(URL), {"username": "alice"}).status_code == 403
        clerk.user_permissions.add(Permission.objects.get(codename="view_usertaskrecord"))
        assert client.get(reverse(URL), {"username": "alice"}).status_code == 200

    def test_linked_from_the_completions_list_and_the_users_points_page(self, client, operator, alice):
        changelist = client.get(reverse("admin:tasks_usertaskrecord_changelist")).content.decode()
        assert f'href="{reverse(URL)}"' in changelist
        page = client.get(reverse("admin:ledger_account_user", args=[alice.pk])).content.decode()
        assert f'href="{reverse(URL)}?username=alice&amp;completion={second_completion(alice).pk}"' in page
