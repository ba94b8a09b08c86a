#!/usr/bin/env python3
"""Loads sluice-spark's streaming page in headless Chromium (Selenium) and checks what it
renders against /api/batches: the batch rows with the topic's offset ranges, non-empty
charts, the totals and the rate limit. Saves a screenshot. Run by the Rust test
connectors/spark/tests/it/ui.rs; exits non-zero with a message on any mismatch.

Usage: streaming_page.py BASE_URL SCREENSHOT_PATH TOPIC RECORDS
  RECORDS: how many records were produced (the page must show them all processed).
"""
import json
import os
import sys
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

DEADLINE_S = 30

# Everything the checks need, read in one script run so a redraw cannot land in between.
READ_PAGE = """
const rows = [...document.querySelectorAll('#batches tbody tr.batch')].map((tr) => ({
  time: Number(tr.dataset.batchTime),
  records: Number(tr.querySelector('td.records').textContent),
  limit: tr.querySelector('td.limit').textContent,
  ranges: [...tr.querySelectorAll('tr.range')].map((r) => [
    r.querySelector('.topic').textContent,
    Number(r.querySelector('.partition').textContent),
    Number(r.querySelector('.from').textContent),
    Number(r.querySelector('.until').textContent),
    Number(r.querySelector('.count').textContent)]),
}));
const charts = {};
for (const svg of document.querySelectorAll('svg.chart')) {
  const line = svg.querySelector('polyline.series');
  charts[svg.id] = line ? line.getAttribute('points').trim().split(/\\s+/).length : 0;
}
return {rows, charts,
  summary: document.getElementById('summary').textContent,
  title: document.getElementById('batches-title').textContent,
  rateLimit: document.getElementById('rate-limit').textContent};
"""


def fail(msg):
    print(f"streaming_page.py: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 5:
        fail(__doc__)
    base, shot, topic, produced = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if not base.endswith("/"):
        base += "/"
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--window-size=1400,1500", "--hide-scrollbars"):
        opts.add_argument(a)
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=opts, service=service)
    try:
        driver.get(base)
        if driver.title != "sluice-spark: Streaming":
            fail(f"unexpected title {driver.title!r}")
        # Wait until the page shows every produced record processed and at least two
        # batches in the charts.
        want = f", {produced} records)"
        try:
            WebDriverWait(driver, DEADLINE_S, poll_frequency=0.2).until(
                lambda d: want in d.find_element(By.ID, "summary").text
                and d.execute_script(READ_PAGE)["charts"].get("chart-input_rate", 0) >= 2)
        except Exception:
            fail(f"the page never showed {want!r}: {driver.find_element(By.ID, 'summary').text!r}")
        page = driver.execute_script(READ_PAGE)
        with urllib.request.urlopen(base + "api/batches", timeout=10) as r:
            api = json.load(r)
        by_time = {b["batch_time_ms"]: b for b in api["batches"]}

        rows = page["rows"]
        if not rows:
            fail("no batch rows")
        # Every row is a batch the API knows, with the same records and offset ranges.
        for row in rows:
            b = by_time.get(row["time"])
            if b is None:
                fail(f"row for batch {row['time']} is not in /api/batches")
            want_ranges = [[r["topic"], r["partition"], r["from_offset"], r["until_offset"],
                            r["count"]] for r in b["offset_ranges"]]
            if row["records"] != b["records"] or row["ranges"] != want_ranges:
                fail(f"row {row} does not match {b}")
        # Rows are newest first, like Spark's table.
        times = [r["time"] for r in rows]
        if times != sorted(times, reverse=True):
            fail(f"rows not newest first: {times}")
        # The rows' ranges of the topic cover each partition from 0 to its end, once.
        covered = {}
        for row in reversed(rows):
            for t, p, frm, until, count in row["ranges"]:
                if t != topic or count == 0:
                    continue
                if covered.get(p, 0) != frm or until - frm != count:
                    fail(f"partition {p}: range {frm}..{until} does not follow {covered.get(p, 0)}")
                covered[p] = until
        if sum(covered.values()) != produced:
            fail(f"rows cover {covered}, {sum(covered.values())} records, not {produced}")
        # Each chart has one point per batch the page drew (at least two).
        for name, points in page["charts"].items():
            if points < 2:
                fail(f"chart {name} has {points} points")
        if not page["title"].startswith(f"Completed Batches (last {len(rows)} out of "):
            fail(f"title {page['title']!r}")
        if f"{api['processed_records']} records)" not in page["summary"]:
            fail(f"summary {page['summary']!r} vs {api['processed_records']} records")
        limit = api["rate_limit_per_second"]
        want_limit = "none" if limit is None else f"{round(limit)} records/sec"
        if page["rateLimit"] != want_limit:
            fail(f"rate limit shown {page['rateLimit']!r}, API says {limit}")
        os.makedirs(os.path.dirname(os.path.abspath(shot)), exist_ok=True)
        if not driver.save_screenshot(shot):
            fail(f"could not save the screenshot to {shot}")
        print(json.dumps({"rows": len(rows), "charts": page["charts"], "covered": covered,
                          "rate_limit": page["rateLimit"], "screenshot": shot}))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
