"""P1: server time a tracked request adds, against one raw redis-py LPUSH of the same event payload.

Target: <= 1.5x. For scale it also times a plain Celery `apply_async` of the same payload (what
`task.delay()` in a middleware would cost). Everything is measured in one process, in alternating
blocks, and each is represented by its fastest block: on a shared machine noise only ever adds
time, so the fastest block is the closest to what the code itself costs (the median is printed too).

    .venv/bin/python bench/p1_handoff.py
"""

import json
import time

from setup_django import median, setup

BLOCKS = 25
PER_BLOCK = 400


def main() -> None:
    setup()
    from django.contrib.auth import get_user_model
    from django.http import JsonResponse
    from django.test import RequestFactory

    from apps.tasks.models import TaskConfig
    from apps.tracking.capture import event_from_request
    from apps.tracking.handoff import handoff, web_inbox
    from apps.tracking.middleware import TrackingMiddleware
    from apps.tracking.tasks import process_event

    TaskConfig.objects.create(
        task_type="sign-in",
        method="POST",
        interface_name=r"^/checkin/$",
        status="in_use",
        success_json_field="code",
        success_json_value="0",
    )
    user = get_user_model().objects.create_user("bench", password="x")  # noqa: S106
    request = RequestFactory().post("/checkin/", HTTP_ACCEPT_LANGUAGE="zh-CN", REMOTE_ADDR="10.1.2.3")
    request.user = user
    response = JsonResponse({"code": 0, "message": "ok"})
    middleware = TrackingMiddleware(lambda r: response)
    payload = event_from_request(request, response).to_payload()
    raw = web_inbox().client
    raw_key = f"{web_inbox().queue}:bench-raw"
    handoff()  # build the hand-off (and its Lua script) before timing

    def bare() -> None:
        response  # noqa: B018 - the view itself returns at once

    def tracked() -> None:
        middleware(request)

    def lpush() -> None:
        raw.lpush(raw_key, json.dumps(payload))

    def delay() -> None:
        process_event.apply_async(args=[payload])

    runs = {"bare": bare, "lpush": lpush, "tracked": tracked, "delay": delay}
    for fn in runs.values():  # warm up connections and caches
        for _ in range(50):
            fn()
    means: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(BLOCKS):
        for name, fn in runs.items():
            started = time.perf_counter()
            for _ in range(PER_BLOCK if name != "delay" else PER_BLOCK // 4):
                fn()
            count = PER_BLOCK if name != "delay" else PER_BLOCK // 4
            means[name].append((time.perf_counter() - started) / count)
    m = {name: min(values) for name, values in means.items()}
    med = {name: median(values) for name, values in means.items()}
    added = m["tracked"] - m["bare"]
    ratio = added / m["lpush"]
    print(f"P1 inputs: {BLOCKS} blocks x {PER_BLOCK} calls, payload {len(json.dumps(payload))} bytes, Redis on loopback")
    print(f"  raw redis-py LPUSH            {m['lpush'] * 1e6:8.1f} us")
    print(f"  tracked request adds          {added * 1e6:8.1f} us  (route, event, one EVALSHA)")
    print(f"  Celery apply_async            {m['delay'] * 1e6:8.1f} us  ({m['delay'] / m['lpush']:.1f}x LPUSH)")
    print(f"  (medians of the blocks: ratio {(med['tracked'] - med['bare']) / med['lpush']:.2f})")
    print(f"P1 ratio tracked/LPUSH = {ratio:.2f} (target <= 1.5): {'PASS' if ratio <= 1.5 else 'MISS'}")
    inbox = web_inbox()
    inbox.client.delete(raw_key, inbox.key, inbox.wake_key, inbox.queue, inbox.template_key)


if __name__ == "__main__":
    main()
