"""Keystone's public WSGI app for gunicorn.

Keystone parses sys.argv with oslo.config when it builds the app, and refuses gunicorn's own
arguments, so they are cleared first. The config file comes from OS_KEYSTONE_CONFIG_FILES.
"""
import sys

sys.argv = sys.argv[:1]

from keystone.server.wsgi import initialize_public_application  # noqa: E402

application = initialize_public_application()
