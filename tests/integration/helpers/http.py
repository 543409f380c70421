"""Tiny stdlib HTTP client for the tests (no extra dependency)."""

import json
import urllib.error
import urllib.request


def request(method, url, body=None, headers=None, timeout=10.0):
    """Returns (status, headers dict, body bytes); HTTP errors are returned, not raised."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def get(url, timeout=10.0):
    return request("GET", url, timeout=timeout)


def post_json(url, obj, headers=None, timeout=10.0):
    return request("POST", url, body=obj, headers=headers, timeout=timeout)


def ok(url, timeout=2.0):
    """True when GET url answers 200 (connection errors are False)."""
    try:
        return get(url, timeout=timeout)[0] == 200
    except OSError:
        return False
