"""Readiness probe for launch.sh: exit 0 once the frontend lists the model and every worker is healthy.

Usage: ready.py HTTP_URL SERVED_NAME [SYSTEM_PORT ...]
"""

import json
import sys
import urllib.request


def get(url):
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status, response.read()


def main(argv):
    url, served_name, ports = argv[1], argv[2], argv[3:]
    try:
        status, body = get(url + "/v1/models")
        models = [m.get("id") for m in json.loads(body).get("data", [])]
        if status != 200 or served_name not in models:
            return 1
        for port in ports:
            if get(f"http://127.0.0.1:{port}/health")[0] != 200:
                return 1
    except (OSError, ValueError):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
