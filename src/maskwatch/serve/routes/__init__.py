"""The routes, one module (and one ``APIRouter``) per resource; ``create_app`` includes them in this order, the
order of the OpenAPI schema."""

from maskwatch.serve.routes import classify, detect, events, health, live, pages

ROUTERS = [detect.router, classify.router, health.router, events.router, live.router, pages.router]
