"""The JSON API, mounted at /api/: its schema at /api/openapi.json, its docs at /api/docs.

Each app owns its endpoints (a ninja Router in `apps/<app>/api.py`); this module only composes
them. A new group of endpoints is one import and one `add_router` line below.
"""

from ninja import NinjaAPI, Swagger

from apps.ledger.api import leaderboards_router, me_router
from apps.notifications.api import router as notifications_router
from apps.rewards.api import router as redemptions_router
from apps.rewards.api_holds import router as holds_router
from apps.rules.api import router as progress_router
from apps.rules.api_badges import router as badges_router
from apps.tracking.api import router as events_router
from config.api_errors import install_error_handlers

api = NinjaAPI(
    title="Jifen API",
    version="1",
    description=(
        "The signed-in user's points (session sign-in, as on the site), the leaderboards, and for other business "
        "systems POST /api/events and the holds of POST /api/holds (HMAC-signed with a service key; see docs/api.md)."
    ),
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
    # Swagger UI comes from the package's static files (ninja is an installed app); no validator
    # badge, which would call a public validator service with the schema's address.
    docs=Swagger(settings={"validatorUrl": None}),
)
install_error_handlers(api)

api.add_router("/events", events_router)
api.add_router("/me", me_router)
api.add_router("/me/progress", progress_router)
api.add_router("/me/redemptions", redemptions_router)
api.add_router("/me/notifications", notifications_router)
api.add_router("/me/badges", badges_router)
api.add_router("/leaderboards", leaderboards_router)
api.add_router("/holds", holds_router)
