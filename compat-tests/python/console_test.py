"""The broker's web console in headless Chromium, driven by Selenium.

    console_test.py browser SPEC.json OUT_DIR
        Loads every page of the console at SPEC's url and asserts what it renders against
        the data the Rust test (compat-tests/tests/it/console.rs) put in the broker with a
        real client; then, through the UI, produces a message, creates a topic, deletes one
        (typed confirmation) and resets a group's offsets (typed confirmation). Saves a
        screenshot of each page as OUT_DIR/console-*.png. Prints `PRODUCED <partition>
        <offset>` and, last, `OK`. The Rust test checks the UI's changes with real clients.

    console_test.py grant BOOTSTRAP PRINCIPAL TOPIC
        Creates ALLOW ACLs for PRINCIPAL to DESCRIBE and READ TOPIC (confluent-kafka's
        AdminClient), for the test of a console user limited by ACLs.

Chromium and chromedriver come from compat-tests/scripts/install-chromium.sh; Selenium from
compat-tests/scripts/install-python.sh.
"""

import json
import os
import sys
import time

INSTALL = "run `bash compat-tests/scripts/install-chromium.sh` (and install-python.sh)"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DEADLINE = 20


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def browser(spec_path, out_dir):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select, WebDriverWait
    except ImportError as e:
        fail(f"selenium is missing ({e}): {INSTALL}")
    for p in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(p):
            fail(f"{p} is missing: {INSTALL}")

    spec = json.load(open(spec_path))
    url = spec["url"].rstrip("/")
    os.makedirs(out_dir, exist_ok=True)

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_window_size(1400, 1000)

    def wait_for(what, fn, deadline=DEADLINE):
        """Polls fn() until it returns something truthy; fails naming `what`."""
        end = time.time() + deadline
        last = None
        while time.time() < end:
            try:
                v = fn()
                if v:
                    return v
            except Exception as e:  # element not there yet, stale, ...
                last = e
            time.sleep(0.1)
        shot("failure")
        banner = driver.find_elements(By.ID, "banner")
        fail(f"timed out waiting for {what} (last error: {last!r}); page banner: "
             f"{banner[0].text if banner else ''!r}; url {driver.current_url}")

    def shot(name):
        path = os.path.join(out_dir, f"console-{name}.png")
        driver.save_screenshot(path)
        print(f"screenshot {path}", flush=True)

    def go(hash_):
        # The page renders a route asynchronously: empty the view first, so that waits only
        # ever match the new page's content, never the previous one's.
        target = f"{url}/#{hash_}"
        driver.execute_script("var v = document.getElementById('view'); if (v) v.replaceChildren();")
        if driver.current_url == target:
            driver.refresh()
        else:
            driver.get(target)

    def css(sel):
        return driver.find_element(By.CSS_SELECTOR, sel)

    def csss(sel):
        return driver.find_elements(By.CSS_SELECTOR, sel)

    def cell(row_sel, col):
        return css(f"{row_sel} [data-col='{col}']").text.strip()

    def check(cond, msg):
        if not cond:
            shot("failure")
            fail(msg)

    try:
        # ---------------------------------------------------------------- topics
        go("/topics")
        for t in spec["topics"]:
            row = f"tr[data-topic='{t['name']}']"
            wait_for(f"topic row {t['name']}", lambda: csss(row))
            check(cell(row, "partitions") == str(t["partitions"]),
                  f"{t['name']}: partitions {cell(row, 'partitions')!r}, want {t['partitions']}")
            check(cell(row, "messages") == str(t["messages"]),
                  f"{t['name']}: messages {cell(row, 'messages')!r}, want {t['messages']}")
        shot("topics")

        # ---------------------------------------------------------------- one topic
        orders = spec["orders"]
        go(f"/topic/{orders['name']}")
        wait_for("partition count", lambda: css("#partition-count").text == str(orders["partitions"]))
        for p, hw in enumerate(orders["high_watermarks"]):
            row = f"#partitions tr[data-partition='{p}']"
            wait_for(f"partition {p} row", lambda: csss(row))
            check(cell(row, "high_watermark") == str(hw), f"partition {p}: high watermark {cell(row, 'high_watermark')!r}, want {hw}")
            check(cell(row, "log_start") == "0", f"partition {p}: log start {cell(row, 'log_start')!r}")
        for name, value in orders["configs"].items():
            row = f"#configs tr[data-config='{name}']"
            wait_for(f"config {name}", lambda: csss(row))
            check(cell(row, "value") == value, f"config {name} = {cell(row, 'value')!r}, want {value!r}")
        shot("topic")

        # ---------------------------------------------------------------- messages: JSON
        go(f"/topic/{orders['name']}/messages?partition=0&position=earliest&limit=2")
        wait_for("orders messages", lambda: len(csss("tr.msg-row")) == 2)
        first = css("tr.msg-row[data-offset='0']")
        fmt = first.find_element(By.CSS_SELECTOR, ".msg-value .badge").get_attribute("data-format")
        check(fmt == "json", f"orders value shown as {fmt}, want json")
        pretty = first.find_element(By.CSS_SELECTOR, ".msg-value pre").text
        check('\n  "item": "widget"' in pretty, f"orders value not pretty-printed JSON: {pretty!r}")
        check(orders["first_key"] in first.find_element(By.CSS_SELECTOR, ".msg-key").text, "orders key missing")
        hdr = first.find_element(By.CSS_SELECTOR, ".msg-headers").text
        check("source" in hdr and "console-test" in hdr, f"orders header: {hdr!r}")
        # Paging forward and back.
        css("button.msg-next").click()
        wait_for("next page (offsets 2, 3)", lambda: [r.get_attribute("data-offset") for r in csss("tr.msg-row")] == ["2", "3"])
        css("button.msg-prev").click()
        wait_for("previous page (offsets 0, 1)", lambda: [r.get_attribute("data-offset") for r in csss("tr.msg-row")] == ["0", "1"])
        # By timestamp: ListOffsets semantics (first message at or after it).
        go(f"/topic/{orders['name']}/messages?partition=0&timestamp={orders['timestamp_of_offset_2']}&limit=10")
        wait_for("messages from a timestamp", lambda: [r.get_attribute("data-offset") for r in csss("tr.msg-row")][:1] == ["2"])
        shot("messages-json")

        # ---------------------------------------------------------------- messages: text, hex
        events = spec["events"]
        go(f"/topic/{events['name']}/messages?partition=0&position=earliest")
        wait_for("events messages", lambda: len(csss("tr.msg-row")) >= 2)
        text_row = css("tr.msg-row[data-offset='0']")
        check(text_row.find_element(By.CSS_SELECTOR, ".msg-value .badge").get_attribute("data-format") == "text", "text value badge")
        check(text_row.find_element(By.CSS_SELECTOR, ".msg-value pre").text == events["text_value"], "text value")
        bin_row = css("tr.msg-row[data-offset='1']")
        check(bin_row.find_element(By.CSS_SELECTOR, ".msg-value .badge").get_attribute("data-format") == "hex", "binary value badge")
        got_hex = bin_row.find_element(By.CSS_SELECTOR, ".msg-value pre").text
        check(got_hex == events["binary_value_hex"], f"binary value hex {got_hex!r}, want {events['binary_value_hex']!r}")
        bin_hdr = bin_row.find_element(By.CSS_SELECTOR, ".msg-headers [data-header='trace']")
        check(bin_hdr.find_element(By.CSS_SELECTOR, ".badge").get_attribute("data-format") == "hex", "binary header badge")
        check(events["binary_header_hex"] in bin_hdr.text, f"binary header {bin_hdr.text!r}")
        shot("messages-binary")

        # ---------------------------------------------------------------- transactions
        txn = spec["txn"]
        go(f"/topic/{txn['name']}/messages?partition=0&position=earliest&limit=50&isolation=read_uncommitted")
        wait_for("uncommitted view", lambda: csss("tr.msg-row"))
        values = [r.find_element(By.CSS_SELECTOR, ".msg-value").text for r in csss("tr.msg-row")]
        check(any(txn["aborted"] in v for v in values) and any(txn["committed"] in v for v in values),
              f"read_uncommitted should show both transactions' records: {values}")
        check(any("control: abort" in r.text.lower() for r in csss("tr.msg-row")), "read_uncommitted should show control markers")
        Select(css("#msg-isolation")).select_by_value("read_committed")
        Select(css("#msg-mode")).select_by_value("earliest")
        css("#msg-go").click()
        wait_for("committed view", lambda: "isolation=read_committed" in driver.current_url and csss("tr.msg-row")
                 and all("control" not in r.text.lower() for r in csss("tr.msg-row")))
        values = [r.find_element(By.CSS_SELECTOR, ".msg-value").text for r in csss("tr.msg-row")]
        check(all(txn["aborted"] not in v for v in values), f"read_committed shows an aborted record: {values}")
        check(any(txn["committed"] in v for v in values), f"read_committed lost the committed record: {values}")
        shot("messages-read-committed")

        # ---------------------------------------------------------------- groups
        go("/groups")
        for g in spec["groups"]:
            row = f"tr[data-group='{g['id']}']"
            wait_for(f"group row {g['id']}", lambda: csss(row))
            check(cell(row, "state") == g["state"], f"group {g['id']} state {cell(row, 'state')!r}, want {g['state']}")
            check(cell(row, "lag") == str(g["lag"]), f"group {g['id']} lag {cell(row, 'lag')!r}, want {g['lag']}")
            check(cell(row, "members") == str(g["members"]), f"group {g['id']} members {cell(row, 'members')!r}, want {g['members']}")
        shot("groups")

        live = spec["live_group"]
        go(f"/group/{live['id']}")
        wait_for("live group page", lambda: css("#group-id").text == live["id"])
        check(css("#group-state").text == "Stable", f"live group state {css('#group-state').text!r}")
        members = css("#members").text
        check(live["client_id"] in members, f"members table lacks client id {live['client_id']}: {members!r}")
        check(f"{live['topic']}: 0" in css(".member-assignment").text, f"assignment: {css('.member-assignment').text!r}")
        row = f"#offsets tr[data-tp='{live['topic']}-0']"
        check(cell(row, "committed") == str(live["committed"]), f"committed {cell(row, 'committed')!r}")
        check(cell(row, "lag") == str(live["lag"]), f"lag {cell(row, 'lag')!r}")
        wait_for("lag chart", lambda: csss("svg[data-chart='lag-chart']"))
        # The sampler runs every 5 s: wait for a point of the lag chart.
        wait_for("a lag sample", lambda: css("#lag-chart .legend span").get_attribute("data-last") == str(live["lag"]), deadline=30)
        shot("group")
        # Resetting a group with members is refused, as kafka-consumer-groups refuses it.
        Select(css("#reset-strategy")).select_by_value("earliest")
        css("#reset-preview").click()
        wait_for("NON_EMPTY_GROUP", lambda: "NON_EMPTY_GROUP" in css("#reset-result").text)

        # ---------------------------------------------------------------- broker charts
        go("/broker")
        wait_for("broker info", lambda: "Node id" in css("#broker-info").text)
        for c in ("chart-messages", "chart-bytes", "chart-requests", "chart-latency"):
            wait_for(f"chart {c}", lambda: csss(f"#{c} svg"))
        # Four rates (five readings, 2 s apart) while the test's producer runs.
        wait_for("five /metrics readings", lambda: any(f"· {n} points" in css("#metrics-status").text for n in range(4, 20)), deadline=30)
        wait_for("messages in above zero", lambda: float(css("#chart-messages .legend span").get_attribute("data-last") or 0) > 0)
        shot("broker")

        # ---------------------------------------------------------------- produce via the UI
        go(f"/topic/{events['name']}")
        wait_for("produce form", lambda: csss("#produce-send"))
        Select(css("#produce-partition")).select_by_value("0")
        css("#produce-key").send_keys(spec["produce"]["key"])
        css("#produce-value").send_keys(spec["produce"]["value"])
        css(".hdr-key").send_keys(spec["produce"]["header_key"])
        css(".hdr-value").send_keys(spec["produce"]["header_value"])
        css("#produce-send").click()
        res = wait_for("produce result", lambda: "Produced to partition" in css("#produce-result").text and css("#produce-result").text)
        words = res.replace(".", "").split()
        print(f"PRODUCED {words[3]} {words[-1]}", flush=True)
        shot("produce")

        # ---------------------------------------------------------------- create a topic
        go("/topics")
        wait_for("create button", lambda: csss("#create-topic"))
        css("#create-topic").click()
        wait_for("create dialog", lambda: csss("#new-topic-name"))
        css("#new-topic-name").send_keys(spec["create"]["name"])
        css("#new-topic-partitions").clear()
        css("#new-topic-partitions").send_keys(str(spec["create"]["partitions"]))
        shot("create-dialog")
        css("#confirm-ok").click()
        wait_for("created topic page", lambda: css("#partition-count").text == str(spec["create"]["partitions"])
                 and css("#topic-name").text == spec["create"]["name"])

        # ---------------------------------------------------------------- delete a topic
        doomed = spec["delete"]
        go(f"/topic/{doomed}")
        wait_for("delete button", lambda: csss("#delete-topic"))
        css("#delete-topic").click()
        wait_for("delete dialog", lambda: csss("#confirm-input"))
        ok = css("#confirm-ok")
        check(not ok.is_enabled(), "delete is enabled before the name is typed")
        css("#confirm-input").send_keys(doomed + "x")
        check(not ok.is_enabled(), "delete is enabled with a wrong name typed")
        css("#confirm-input").clear()
        css("#confirm-input").send_keys(doomed)
        wait_for("delete enabled", lambda: ok.is_enabled())
        shot("delete-dialog")
        ok.click()
        wait_for("topics list without the deleted topic", lambda: driver.current_url.endswith("#/topics")
                 and csss("#topics tbody tr") and not csss(f"tr[data-topic='{doomed}']"))

        # ---------------------------------------------------------------- reset offsets
        reset = spec["reset"]
        go(f"/group/{reset['id']}")
        wait_for("group to reset", lambda: css("#group-id").text == reset["id"])
        Select(css("#reset-strategy")).select_by_value("earliest")
        css("#reset-execute").click()
        wait_for("reset dialog", lambda: csss("#confirm-input"))
        news = [c.text for c in csss("#modal [data-col='new']")]
        check(len(news) == 3 and all(n == "0" for n in news), f"reset plan in the dialog: {news}")
        css("#confirm-input").send_keys(reset["id"])
        shot("reset-dialog")
        css("#confirm-ok").click()
        wait_for("reset done", lambda: "reset" in css("#banner").text and css("#banner").is_displayed())
        wait_for("group lag after the reset", lambda: css("#group-lag").text == str(reset["lag_after"]))
        shot("reset")
    finally:
        driver.quit()
    print("OK", flush=True)


def grant(bootstrap, principal, topic):
    from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                       ResourcePatternType, ResourceType)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    acls = [AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, principal, "*", op,
                       AclPermissionType.ALLOW) for op in (AclOperation.DESCRIBE, AclOperation.READ)]
    for _, f in admin.create_acls(acls, request_timeout=20).items():
        f.result()
    print("OK", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "browser":
        browser(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "grant":
        grant(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        fail(__doc__)
