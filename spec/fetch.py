#!/usr/bin/python3
"""spec/fetch.py METHOD URL [BODY [CONTENT_TYPE]] - one HTTP request -> JSON.

Prints {"status", "headers": {lowercase name: value}, "body"}; redirects are
not followed. Standard library only.
"""
import json
import sys
import urllib.error
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def main():
    method, url = sys.argv[1], sys.argv[2]
    body = sys.argv[3].encode() if len(sys.argv) > 3 else None
    headers = {}
    if len(sys.argv) > 4:
        headers["Content-Type"] = sys.argv[4]
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        r = opener.open(req, timeout=30)
        status, hdrs, text = r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        status, hdrs, text = e.code, e.headers, e.read().decode()
    print(json.dumps({"status": status, "headers": {k.lower(): v for k, v in hdrs.items()},
                      "body": text}))


if __name__ == "__main__":
    main()
