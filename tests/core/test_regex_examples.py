"""Example paths of a path regex (apps.core.regex_examples): each one really matches, and the common shapes give one."""

import re

import pytest

from apps.core.regex_examples import regex_examples


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"^/posts/(?P<post_id>\d+)/share/$", "/posts/1/share/"),
        (r"^/posts/(?P<slug>[^/]+)/$", "/posts/a/"),  # letters as well as digits: slugs and ids
        (r"^/posts/(?P<slug>[^/]+)/$", "/posts/1/"),
        (r"^/api/v[12]/(thread|post)s/(?P<id>[0-9a-f]{8})/$", "/api/v1/posts/11111111/"),
        (r"^/p/(?P<id>\w+)/like/?$", "/p/1/like"),
        (r"/x/.*", "/x/"),
        (r"^/a(?>b+)c$", "/abc"),
    ],
)
def test_common_shapes_give_the_path_an_operator_would_write(pattern, expected):
    assert expected in regex_examples(pattern)


@pytest.mark.parametrize(
    "pattern",
    [r"^/(?!admin)[a-z]+/$", r"(?i)^/A/$", r"^/u/(?P<id>[^/]{3,5})/$", r"^/\d{2,}/(a|b|)$", r"^/.+?/$"],
)
def test_every_example_matches_the_whole_pattern(pattern):
    found = regex_examples(pattern)
    assert found, pattern
    assert all(re.fullmatch(pattern, example) for example in found)
    assert len(found) == len(set(found))


def test_a_back_reference_may_cost_examples_but_never_gives_a_false_one():
    assert all(re.fullmatch(r"^/(?P<a>x)(?P=a)/$", example) for example in regex_examples(r"^/(?P<a>x)(?P=a)/$"))


@pytest.mark.parametrize("pattern", ["[[[", "(", "a{99999999999}"])
def test_a_pattern_that_does_not_compile_gives_none(pattern):
    assert regex_examples(pattern) == []
