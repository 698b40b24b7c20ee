import factory
from django.contrib.auth import get_user_model

from apps.rules.models import ScoreRule
from apps.tasks.models import TaskConfig


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("demo12345")


class TaskConfigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TaskConfig

    task_type = factory.Sequence(lambda n: f"task-{n}")
    method = "POST"
    interface_name = factory.LazyAttribute(lambda o: rf"^/{o.task_type}/$")
    status = TaskConfig.Status.IN_USE


class ScoreRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScoreRule

    score_type = factory.Sequence(lambda n: f"rule-{n}")
    task_type = "sign-in"
    kind = ScoreRule.Kind.COUNT
    points = 1
    statistical_period = ScoreRule.Period.DAY
    required_number_of_times = 1
    status = ScoreRule.Status.ACTIVE
