#!/usr/bin/python3
"""test_dashboard.py - the web dashboard in headless Chromium (Selenium).

Starts a real anvild (--http on a free loopback port, a fresh data folder,
--listen on an ipc:// socket in it) and a real anvil-worker, submits work
through the HTTP API and checks what the page shows: the overview lists a
submitted job's queue; a job's page shows its result; a workflow's graph
has one node per step in the right state; cancel from the page cancels a
queued job; a job that finishes while its page is open changes state
without a reload; the event list has every seq exactly once after the
stream reconnects (anvild stopped and started again on the same port and
data folder); the schedules page lists a schedule with its spec and
next fire time, shows its ticks' jobs as they fire, and pauses one; the
overview lists a concurrency key held at its limit.
Every wait is a condition with a deadline. Each test saves a
screenshot in $ANVIL_BUILD_DIR/screenshots/.

Run by `make test` (scripts/run-tests.sh counts it as one test) with
ANVIL_BIN_DIR and ANVIL_BUILD_DIR set; exits 77 (counted as skipped) only
when Chromium, chromedriver or Selenium is missing. ANVIL_DOCS_IMG=DIR also
writes the README's pictures (overview.png, workflow.png) there.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("ANVIL_BIN_DIR") or os.path.join(SRC, "build/debug/bin")
BUILD = os.environ.get("ANVIL_BUILD_DIR") or os.path.join(SRC, "build/debug")
SHOTS = os.path.join(BUILD, "screenshots")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 15  # seconds any one condition may take

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as e:  # pragma: no cover
    webdriver = None
    IMPORT_ERROR = str(e)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until(cond, what, timeout=WAIT):
    """Polls cond() until it is truthy or the deadline passes (for the
    server side; the page's conditions use WebDriverWait)."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Anvild:
    """A real anvild with its data folder; stop() and start() keep both."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.nng = f"ipc://{tmp}/anvil.sock"
        self.proc = None
        self.log = open(os.path.join(tmp, "anvild.log"), "ab")

    def start(self):
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "anvild"), "--listen", self.nng,
             "--http", self.url, "--db", os.path.join(self.tmp, "anvil.db")],
            stdout=self.log, stderr=self.log)
        until(self.ready, "anvild to answer /healthz")

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"anvild exited ({self.proc.returncode}); "
                                 f"see {self.tmp}/anvild.log")
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path}: {e.code} {e.read()!r}")

    def submit(self, **job):
        return self.call("POST", "/v1/jobs", job)["id"]

    def job(self, jid):
        return self.call("GET", f"/v1/jobs/{jid}")["job"]


class Dashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="anvil-web-")
        cls.server = Anvild(cls.tmp)
        cls.server.start()
        cls.worker_log = open(os.path.join(cls.tmp, "worker.log"), "ab")
        cls.worker = subprocess.Popen(
            [os.path.join(BIN, "anvil-worker"), "--server", cls.server.nng,
             "--slots", "4", "--name", "web-test-worker"],
            stdout=cls.worker_log, stderr=cls.worker_log)
        # The page must come from anvild itself (dashboard_answer in http.c).
        try:
            with urllib.request.urlopen(cls.server.url + "/", timeout=5) as r:
                page = r.read().decode()
        except urllib.error.HTTPError as e:
            page = f"HTTP {e.code}: {e.read()[:200]!r}"
        if "/app.js" not in page:
            cls.tearDownClass()
            raise AssertionError("anvild does not serve the dashboard at / "
                                 f"(http.c must call dashboard_answer): {page}")
        os.makedirs(SHOTS, exist_ok=True)
        cls.driver = cls.browser()
        cls.t0 = time.monotonic()

    @classmethod
    def browser(cls):
        o = Options()
        o.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-quic", "--no-first-run",
                  "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,800",
                  f"--user-data-dir={cls.tmp}/chromium"):
            o.add_argument(a)
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)
        d.set_page_load_timeout(WAIT)
        return d

    @classmethod
    def tearDownClass(cls):
        d = getattr(cls, "driver", None)
        if d is not None:
            errors = [entry for entry in d.get_log("browser")
                      if entry["level"] == "SEVERE"
                      and "/v1/" not in entry["message"]]
            d.quit()
            cls.driver = None
            if errors:
                print("browser errors:", *[e["message"] for e in errors],
                      sep="\n  ", file=sys.stderr)
        if cls.worker.poll() is None:
            cls.worker.send_signal(signal.SIGTERM)
            try:
                cls.worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                cls.worker.kill()
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers ----

    def setUp(self):
        self.d = self.driver
        self.viewport(1280, 800)

    def viewport(self, w, h, dark=False):
        self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": w, "height": h, "deviceScaleFactor": 1,
            "mobile": w < 600})
        self.d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [
            {"name": "prefers-color-scheme",
             "value": "dark" if dark else "light"}]})

    def open(self, path):
        self.d.get(self.server.url + path)
        self.wait(lambda d: d.find_element(By.ID, "view")
                  .get_attribute("data-loaded"), f"{path} to load")

    def wait(self, cond, what, timeout=WAIT):
        def safe(d):
            try:
                return cond(d)
            except StaleElementReferenceException:
                return False
        return WebDriverWait(self.d, timeout, poll_frequency=0.05).until(
            safe, f"timed out waiting for {what}")

    def click(self, sel, what):
        """Clicks sel once it is there (again if a redraw replaced it)."""
        def clicked(d):
            els = d.find_elements(By.CSS_SELECTOR, sel)
            if not els:
                return False
            els[0].click()
            return True
        self.wait(clicked, what)

    def css(self, sel):
        return self.d.find_elements(By.CSS_SELECTOR, sel)

    def shot(self, name, full=False):
        path = os.path.join(SHOTS, f"{name}.png")
        if full:
            import base64
            png = self.d.execute_cdp_cmd("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True})["data"]
            with open(path, "wb") as f:
                f.write(base64.b64decode(png))
        else:
            self.d.save_screenshot(path)
        docs = os.environ.get("ANVIL_DOCS_IMG")
        if docs and name in ("overview", "workflow"):
            shutil.copy(path, os.path.join(docs, f"{name}.png"))
        return path

    def wait_job(self, jid, state):
        until(lambda: self.server.job(jid)["state"] == f"JOB_STATE_{state}",
              f"job {jid} to be {state}")

    # ---- the tests ----

    def test_1_overview_shows_a_submitted_jobs_queue(self):
        self.server.submit(type="echo", queue="reports",
                           payload={"report": "weekly"})
        self.server.submit(type="resize", queue="images",
                           payload={"image": "cat.png"})
        self.open("/")
        # Read inside the wait: the table is redrawn as events arrive.
        self.wait(lambda d: [
            r for r in d.find_elements(
                By.CSS_SELECTOR,
                '#depths tr[data-queue="images"][data-no-worker="true"]')
            if "no worker" in r.text.lower()],
            "the images queue in the overview, flagged as having no worker")
        self.wait(lambda d: d.find_elements(
            By.CSS_SELECTOR, '#depths tr[data-queue="reports"]'),
            "the reports queue in the overview")
        self.shot("overview-first")

    def test_2_job_page_shows_its_result(self):
        jid = self.server.submit(type="echo", payload={"hello": "page"})
        self.wait_job(jid, "SUCCEEDED")
        self.open(f"/jobs/{jid}")
        # The page redraws as events arrive: read inside the waits.
        res = self.wait(lambda d: d.find_element(
            By.CSS_SELECTOR, '#job-result [data-field="result"]').text,
            "the result block")
        self.assertIn('"hello": "page"', res)
        self.wait(lambda d: [
            b for b in d.find_elements(By.CSS_SELECTOR, "#job-state .badge")
            if b.get_attribute("data-state") == "succeeded"
            and "succeeded" in b.text], "the succeeded label")
        # The attempt from the job's events, with the worker that ran it.
        att = self.wait(lambda d: d.find_element(
            By.CSS_SELECTOR, '#attempts tr[data-attempt="1"]').text,
            "attempt 1 in the attempts table")
        self.assertIn("web-test-worker", att)
        self.shot("job")

    def test_3_workflow_graph_has_a_node_per_step(self):
        spec = {"name": "etl", "steps": [
            {"name": "extract", "type": "echo", "data": {"rows": 3}},
            {"name": "clean", "type": "echo", "after": ["extract"]},
            {"name": "audit", "type": "echo", "after": ["extract"]},
            {"name": "load", "type": "nobody-runs-this",
             "after": ["clean", "audit"]},
            {"name": "report", "type": "echo", "after": ["load"]}]}
        wid = self.server.call("POST", "/v1/workflows", spec)["id"]
        want = {"extract": "succeeded", "clean": "succeeded",
                "audit": "succeeded", "load": "queued", "report": "pending"}

        def states():
            wf = self.server.call("GET", f"/v1/workflows/{wid}")["workflow"]
            return {s["step"]: s["state"].replace("JOB_STATE_", "").lower()
                    for s in wf["steps"]}
        until(lambda: states() == want, "the workflow to reach its steady state")
        self.open(f"/workflows/{wid}")

        def drawn(d):
            nodes = d.find_elements(By.CSS_SELECTOR, "#dag g.node")
            got = {n.get_attribute("data-step"): n.get_attribute("data-state")
                   for n in nodes}
            return got == want and len(nodes) == len(want)
        self.wait(drawn, "one node per step in the right state")
        edges = self.css("#dag path.edge")
        self.assertEqual(len(edges), 5)  # as the steps' after lists say
        self.shot("workflow", full=True)
        # Clicking a step opens its job.
        self.click('#dag g.node[data-step="load"]', "the load step")
        self.wait(lambda d: d.find_element(By.ID, "view")
                  .get_attribute("data-job"), "the load step's job page")
        self.assertTrue(self.d.current_url.split("/jobs/")[1])

    def test_4_cancel_and_retry_from_the_page(self):
        jid = self.server.submit(type="nobody-serves-this", queue="idle")
        self.open(f"/jobs/{jid}")
        self.click('[data-action="cancel"]', "the cancel button")
        self.click('#confirm-dialog [data-confirm="yes"]', "the confirmation")
        self.wait_job(jid, "CANCELED")
        self.wait(lambda d: d.find_element(By.ID, "view")
                  .get_attribute("data-state") == "canceled",
                  "the page to show the job canceled")
        self.shot("cancel")
        # Retry from the page: the same job waits again, its attempt kept.
        self.click('[data-action="retry"]', "the retry button")
        self.click('#confirm-dialog [data-confirm="yes"]', "the confirmation")
        self.wait_job(jid, "QUEUED")
        self.wait(lambda d: d.find_element(By.ID, "view")
                  .get_attribute("data-state") == "queued",
                  "the page to show the job queued again")

    def test_5_a_job_finishing_changes_state_without_a_reload(self):
        jid = self.server.submit(type="Sleep", payload={
            "SleepTimeInSeconds": 2, "Message": "web test"})
        self.open(f"/jobs/{jid}")
        marker = self.d.execute_script(
            "return window.__noReload = Math.random();")
        self.wait(lambda d: d.find_element(By.ID, "view")
                  .get_attribute("data-state") == "running",
                  "the job to show running")
        self.wait(lambda d: d.find_element(By.ID, "view")
                  .get_attribute("data-state") == "succeeded",
                  "the job to show succeeded", timeout=20)
        self.assertEqual(
            self.d.execute_script("return window.__noReload;"), marker)
        self.shot("job-finished")

    def test_6_reconnect_resumes_without_gaps(self):
        self.open("/events")
        self.wait(lambda d: d.execute_script(
            "return document.documentElement.dataset.stream") == "open",
            "the event stream to open")
        for i in range(5):
            self.server.submit(type="echo", payload={"before": i})
        self.server.stop()
        self.wait(lambda d: d.execute_script(
            "return document.documentElement.dataset.stream") != "open",
            "the page to see the stream drop")
        self.server.start()
        for i in range(5):
            self.server.submit(type="echo", payload={"after": i})
        last = int(self.server.call("GET", "/v1/health")["last_event_seq"])
        self.assertGreater(last, 0)

        def caught_up(d):
            return d.execute_script(
                "return document.documentElement.dataset.stream") == "open" \
                and int(d.execute_script(
                    "return document.documentElement.dataset.lastSeq || 0")
                ) >= last
        self.wait(caught_up, f"the page to reach seq {last} again",
                  timeout=30)
        seqs = [int(x) for x in self.d.execute_script(
            "return [...document.querySelectorAll('#events li[data-seq]')]"
            ".map(e => e.dataset.seq)")]
        want = []
        after = 0
        while True:
            r = self.server.call(
                "GET", f"/v1/events:watch?after_seq={after}&limit=1000")
            want += [int(e["seq"]) for e in r.get("events", [])]
            if not r.get("events") or int(r["next_seq"]) <= after:
                break
            after = int(r["next_seq"])
        want = [s for s in want if s <= last]
        got = sorted(s for s in seqs if s <= last)
        self.assertEqual(len(got), len(set(got)), "a seq shown twice")
        self.assertEqual(got, want, "the page's events differ from the log")
        self.shot("events")

    def test_8_overview_after_the_work(self):
        # The README's picture: the overview once the tests above ran.
        self.open("/")
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#depths tr"),
                  "the queue table")
        self.wait(lambda d: d.find_elements(
            By.CSS_SELECTOR, '[data-chart="throughput"] rect.bar-ok'),
            "a finished job in the throughput chart")
        self.shot("overview", full=True)

    def test_7_phone_width_and_dark_scheme(self):
        self.viewport(390, 844, dark=True)
        self.open("/")
        self.assertEqual(self.d.execute_script(
            "return document.documentElement.dataset.theme"), "dark")
        nav = self.d.find_element(By.ID, "nav")
        self.assertFalse(nav.is_displayed())
        self.d.find_element(By.ID, "menu-toggle").click()
        self.wait(lambda d: nav.is_displayed(), "the menu to open")
        self.shot("overview-phone-dark")
        # The toggle is remembered.
        self.d.find_element(By.ID, "menu-toggle").click()
        self.d.find_element(By.ID, "theme-toggle").click()
        self.assertEqual(self.d.execute_script(
            "return localStorage.getItem('anvil.theme')"), "light")
        self.d.execute_script("localStorage.removeItem('anvil.theme')")

    def test_9_schedules_page(self):
        nightly = self.server.call("POST", "/v1/schedules", {"spec": {
            "name": "web-nightly", "cron": "30 2 * * *",
            "time_zone": "Europe/Berlin",
            "job": {"type": "Report", "queue": "reports",
                    "payload": {"kind": "daily"}},
            "overlap": "OVERLAP_POLICY_ALLOW",
            "catch_up": "CATCH_UP_POLICY_EACH"}})["schedule"]
        self.server.call("POST", "/v1/schedules", {"spec": {
            "name": "web.every", "cron": "@every 1s",
            "job": {"type": "echo", "payload": {"tick": True}}}})
        self.open("/schedules")

        def row_of(name):
            return self.wait(lambda d: d.find_element(
                By.CSS_SELECTOR, f'#schedules tr[data-schedule="{name}"]'),
                f"the row of schedule {name}")
        row = row_of("web-nightly")
        self.assertIn("30 2 * * *", row.find_element(
            By.CSS_SELECTOR, '[data-field="spec"]').text)
        self.assertIn("Europe/Berlin", row.text)
        self.assertIn("Report", row.text)
        self.assertIn("allow", row.text)
        self.assertIn("each (at most 100)", row.text)
        nxt = row.find_element(By.CSS_SELECTOR, '[data-field="next"]')
        self.assertEqual(nxt.get_attribute("data-ms"),
                         str(nightly["next_fire_ms"]))
        self.assertTrue(nxt.text.startswith("in "), nxt.text)
        # A tick that fires shows up without a reload, its job linked.
        marker = self.d.execute_script(
            "return window.__noReload = Math.random();")
        link = self.wait(lambda d: d.find_elements(
            By.CSS_SELECTOR,
            '#schedules tr[data-schedule="web.every"] a[href^="/jobs/"]'),
            "the every-second schedule's last job")[0]
        self.assertEqual(
            self.d.execute_script("return window.__noReload;"), marker)
        self.assertTrue(link.text)
        self.shot("schedules")
        self.viewport(390, 844)
        self.wait(lambda d: row_of("web-nightly").is_displayed(),
                  "the schedule table at phone width")
        self.assertLessEqual(self.d.execute_script(
            "return document.documentElement.scrollWidth"), 390,
            "the page scrolls sideways at phone width")
        self.shot("schedules-phone")
        self.viewport(1280, 800)
        # Its page (the name has a dot: still a route of the page), paused
        # from there.
        self.open("/schedules/web.every")
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR,
                                            "#last-job a[href^='/jobs/']"),
                  "the last job on the schedule's page")
        self.click('[data-action="pause"]', "the pause button")
        self.click('#confirm-dialog [data-confirm="yes"]', "the confirmation")
        until(lambda: self.server.call(
            "GET", "/v1/schedules/web.every")["schedule"].get("paused"),
            "the schedule to be paused")
        self.wait(lambda d: d.find_element(By.ID, "view")
                  .get_attribute("data-paused") == "true"
                  and d.find_elements(By.CSS_SELECTOR,
                                      '[data-action="resume"]'),
                  "the page to show the schedule paused")
        self.shot("schedule", full=True)
        self.viewport(390, 844)
        self.open("/schedules/web-nightly")
        self.assertLessEqual(self.d.execute_script(
            "return document.documentElement.scrollWidth"), 390,
            "the schedule's page scrolls sideways at phone width")
        self.shot("schedule-phone", full=True)

    def test_9c_overview_flags_a_rate_limited_queue(self):
        self.server.submit(type="Nobody", queue="web-limited", payload={})
        self.server.call("POST", "/v1/queues/web-limited:limit",
                         {"rate_per_second": 50, "burst": 5})
        self.open("/")
        flag = self.wait(lambda d: d.find_elements(
            By.CSS_SELECTOR, 'tr[data-queue="web-limited"] .flag.rate'),
            "the queue's row to show its rate limit")[0]
        self.assertEqual(flag.text, "50/s")
        self.assertIn("5 at once", flag.get_attribute("title"))
        self.shot("overview-rate", full=True)
        self.server.call("POST", "/v1/queues/web-limited:limit", {})

    def test_9b_overview_lists_the_busiest_concurrency_keys(self):
        # Limit 1 and four of them: the worker (4 slots) runs one and sets
        # three aside.
        ids = [self.server.submit(
            type="Sleep", concurrency_key="tenant-web", concurrency_limit=1,
            payload={"SleepTimeInSeconds": 1, "Message": "keyed"})
            for _ in range(4)]

        def held(_):
            for k in self.server.call("GET", "/v1/health").get(
                    "busiest_keys", []):
                if k["key"] == "tenant-web" and int(k.get("running", 0)) == 1 \
                        and int(k.get("waiting", 0)) >= 1:
                    return k
            return None
        until(lambda: held(None), "Health to list key tenant-web")
        self.open("/")
        row = self.wait(lambda d: [
            r for r in d.find_elements(
                By.CSS_SELECTOR, '#busiest-keys tr[data-key="tenant-web"]')
            if r.get_attribute("data-running") == "1"
            and int(r.get_attribute("data-waiting")) >= 1],
            "key tenant-web in the overview, running at its limit")[0]
        self.assertIn("at limit", row.text.lower())
        self.shot("overview-keys", full=True)
        for jid in ids:
            self.wait_job(jid, "SUCCEEDED")
        # Every job of the key ended: the panel goes with the key.
        self.wait(lambda d: not d.find_elements(By.ID, "concurrency-keys"),
                  "the keys panel to go once no job holds a key")


def main():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if webdriver is None:
        missing.append(f"python3-selenium ({IMPORT_ERROR})")
    if missing:
        print("test_dashboard: SKIPPED: missing " + ", ".join(missing) +
              " (sh scripts/deps.sh test installs them)")
        return 77
    t0 = time.monotonic()
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(Dashboard)
    res = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    print(f"test_dashboard: {res.testsRun} checks in "
          f"{time.monotonic() - t0:.1f} s; screenshots in {SHOTS}")
    return 0 if res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
