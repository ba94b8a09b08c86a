"""Scrapes a Prometheus /metrics page and parses it with prometheus_client's own text parser
(the judge: a page it rejects fails the test). Prints one JSON object: the Content-Type
header and every sample as [name, labels, value].

Usage: scrape_metrics.py URL
"""

import json
import math
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main() -> None:
    url = sys.argv[1]
    with urllib.request.urlopen(url, timeout=20) as resp:
        status = resp.status
        content_type = resp.headers.get("Content-Type", "")
        text = resp.read().decode("utf-8")
    samples = []
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        for s in family.samples:
            value = s.value
            if math.isnan(value) or math.isinf(value):
                value = str(value)
            samples.append([s.name, s.labels, value])
    print(
        json.dumps(
            {
                "status": status,
                "content_type": content_type,
                "families": families,
                "samples": samples,
            }
        )
    )


if __name__ == "__main__":
    main()
