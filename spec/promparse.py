#!/usr/bin/python3
"""spec/promparse.py [URL] - Prometheus text (stdin, or GET URL) -> JSON.

Parses with prometheus_client's own text parser (Debian
python3-prometheus-client) and prints {"families": {name: type},
"samples": [{"name", "labels", "value"}], "status": HTTP status,
"content_type": ...}; a parse error prints {"error": ...} and exits 1.
"""
import json
import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main():
    out = {}
    if len(sys.argv) > 1:
        try:
            with urllib.request.urlopen(sys.argv[1], timeout=30) as r:
                text = r.read().decode()
                out["status"] = r.status
                out["content_type"] = r.headers.get("Content-Type")
        except urllib.error.HTTPError as e:
            print(json.dumps({"status": e.code, "body": e.read().decode()}))
            return 0
    else:
        text = sys.stdin.read()
    try:
        fams, samples = {}, []
        for fam in text_string_to_metric_families(text):
            fams[fam.name] = fam.type
            for s in fam.samples:
                samples.append({"name": s.name, "labels": s.labels, "value": s.value})
    except Exception as e:  # the parser's ValueError, or worse
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
        return 1
    out["families"] = fams
    out["samples"] = samples
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
