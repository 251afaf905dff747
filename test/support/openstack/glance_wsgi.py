"""Glance's API as a WSGI app for gunicorn; its config directory comes from OS_GLANCE_CONFIG_DIR."""
import sys

sys.argv = sys.argv[:1]

from glance.common.wsgi_app import init_app  # noqa: E402

application = init_app()
