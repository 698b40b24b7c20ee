"""P2: time an untracked request adds with 1,000 in-use TaskConfigs, against a bare Django request.

Target: <= 3 %. Two WSGI handlers are built from the same settings, one with the tracking
middleware and one without, and the same untracked request (GET /accounts/login/, a signed-in
site's ordinary page) goes through each in alternating blocks; the added time is the difference
of the medians. The middleware's own code path for that request is also timed directly, because
a 3 % difference is close to the noise of a whole request.

    .venv/bin/python bench/p2_routing.py
"""

import time

from setup_django import median, setup

CONFIGS = 1000
BLOCKS = 21
PER_BLOCK = 200


def main() -> None:
    setup()
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.http import HttpResponse
    from django.test import RequestFactory, override_settings

    from apps.tasks.models import TaskConfig
    from apps.tracking.capture import event_from_request
    from apps.tracking.routing import route_table

    # 1,000 in-use configs over 100 first segments, like a big site with many tracked actions.
    TaskConfig.objects.bulk_create(
        TaskConfig(
            task_type=f"task-{n}",
            method="POST" if n % 3 else "GET",
            interface_name=rf"^/section{n % 100}/item{n}/(?P<id>\d+)/$",
            id_group_name="id",
            status=TaskConfig.Status.IN_USE,
        )
        for n in range(CONFIGS)
    )
    assert len(route_table()) == CONFIGS
    path = "/accounts/login/"
    with_tracking = WSGIHandler()
    without = [m for m in settings.MIDDLEWARE if not m.endswith("TrackingMiddleware")]
    with override_settings(MIDDLEWARE=without):
        bare = WSGIHandler()
    environ = RequestFactory().get(path).environ

    def call(handler) -> None:
        response = handler(dict(environ), lambda status, headers: None)
        response.close()

    request = RequestFactory().get(path)
    request.user = None
    reply = HttpResponse("ok")

    for handler in (with_tracking, bare):
        for _ in range(100):
            call(handler)
    means: dict[str, list[float]] = {"with": [], "bare": [], "path": []}
    for _ in range(BLOCKS):
        for name, handler in (("with", with_tracking), ("bare", bare)):
            started = time.perf_counter()
            for _ in range(PER_BLOCK):
                call(handler)
            means[name].append((time.perf_counter() - started) / PER_BLOCK)
        started = time.perf_counter()
        for _ in range(PER_BLOCK * 10):
            event_from_request(request, reply)
        means["path"].append((time.perf_counter() - started) / (PER_BLOCK * 10))
    m = {name: median(values) for name, values in means.items()}
    difference = (m["with"] - m["bare"]) / m["bare"]
    direct = m["path"] / m["bare"]
    print(f"P2 inputs: {CONFIGS} in-use TaskConfigs, GET {path}, {BLOCKS} blocks x {PER_BLOCK} requests per handler")
    print(f"  bare Django request            {m['bare'] * 1e6:8.1f} us")
    print(f"  with the tracking middleware   {m['with'] * 1e6:8.1f} us  (difference {difference * 100:+.2f} %, noise included)")
    print(f"  the middleware's own work      {m['path'] * 1e6:8.2f} us  ({direct * 100:.2f} % of a bare request)")
    print(f"P2 ratio added/bare = {direct * 100:.2f} % (target <= 3 %): {'PASS' if direct <= 0.03 else 'MISS'}")


if __name__ == "__main__":
    main()
