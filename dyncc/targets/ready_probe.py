"""Readiness probe run by generated launch scripts: exit 0 once the frontend lists the model and every
worker's system server reports healthy.

Usage: ready_probe.py FRONTEND_URL SERVED_NAME [HEALTH ...]
HEALTH is a worker's system port (checked on 127.0.0.1) or a full http://host:port/health URL.
"""

import json
import sys
import urllib.request


def get(url):
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status, response.read()


def main(argv):
    url, served_name, health = argv[1], argv[2], argv[3:]
    try:
        status, body = get(url + "/v1/models")
        models = [m.get("id") for m in json.loads(body).get("data", [])]
        if status != 200 or served_name not in models:
            return 1
        for item in health:
            target = item if "://" in item else f"http://127.0.0.1:{item}/health"
            if get(target)[0] != 200:
                return 1
    except (OSError, ValueError):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
