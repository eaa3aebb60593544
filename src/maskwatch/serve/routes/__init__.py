"""The routes, one module (and one ``APIRouter``) per resource; ``create_app`` includes them in this order, the
order of the OpenAPI schema."""

from maskwatch.serve.routes import alerts, cameras, classify, detect, events, health, live, pages, people

ROUTERS = [
    detect.router,
    classify.router,
    health.router,
    events.router,
    cameras.router,
    people.router,
    alerts.router,
    live.router,
    pages.router,
]
