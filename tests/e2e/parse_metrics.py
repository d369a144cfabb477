#!/usr/bin/python3
"""Parses a /metrics scrape with the Prometheus client library's own parser (Debian's
python3-prometheus-client) and prints what it understood, one line each:
  family NAME TYPE
  SAMPLE{label=value,...} VALUE        (labels sorted by name)
Exits 1 with the parser's error when the text is not valid exposition format 0.0.4."""
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    seen = set()
    try:
        for family in text_string_to_metric_families(text):
            if family.name in seen:
                raise ValueError("family %s appears twice" % family.name)
            seen.add(family.name)
            print("family %s %s" % (family.name, family.type))
            for s in family.samples:
                labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
                print("%s%s %r" % (s.name, "{%s}" % labels if labels else "", float(s.value)))
    except Exception as e:  # the parser raises ValueError and others
        print("not valid exposition format: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
