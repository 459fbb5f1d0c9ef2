"""console_browser.py: the approval console in a real browser (Debian's
chromium, headless, driven by python3-selenium through /usr/bin/chromedriver;
nothing is downloaded). Run by tests/console.test.sh, which starts the bus
and `bulkhead console` and passes, as environment:

    CONSOLE_URL   the URL the console printed (with its token)
    BIN, AGENT    the bulkhead binary and examples/agent
    CONN          the connection options (--bus ... --bus-key ...), one string
    DIR           the test's directory (keys NAME.key), SHOTS where to put
                  the screenshots
    ALICE_OWN     a hold alice (the console's approver) sent herself
    ALICE_CAUSE   the seq of a message alice sent planner

Prints one line per check, "ok   NAME" or "FAIL NAME", for the shell test.
"""
import os
import shlex
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["CONSOLE_URL"]
BIN = os.environ["BIN"]
AGENT = os.environ["AGENT"]
CONN = shlex.split(os.environ["CONN"])
DIR = os.environ["DIR"]
SHOTS = os.environ["SHOTS"]
ALICE_OWN = os.environ["ALICE_OWN"]
ALICE_CAUSE = os.environ["ALICE_CAUSE"]
WAIT = 15  # seconds any one step may take

failures = 0
last = "the start"


def check(name, ok, detail=""):
    global failures, last
    last = name
    if ok:
        print("ok   " + name, flush=True)
    else:
        failures += 1
        print("FAIL " + name, flush=True)
        if detail:
            print("     " + str(detail)[:2000], flush=True)


def bulkhead(agent, *args):
    """Runs bulkhead ARGS as agent; returns its stdout."""
    run = subprocess.run([BIN, *args, *CONN, "--key", os.path.join(DIR, agent + ".key")],
                         capture_output=True, text=True, timeout=WAIT)
    return run.stdout + run.stderr


def field(line, name):
    """name=VALUE from one line of `bulkhead send` output."""
    for word in line.split():
        if word.startswith(name + "="):
            return word[len(name) + 1:]
    return ""


def card_for(driver, hold_id):
    return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(
        lambda d: d.find_element(By.CSS_SELECTOR, 'article.hold[data-id="%s"]' % hold_id))


def history_entry(driver, hold_id, state):
    return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(
        lambda d: d.find_element(By.CSS_SELECTOR, '#history li[data-id="%s"][data-state="%s"]'
                                 % (hold_id, state)))


# The message that will be the payment's cause, sent while the browser starts.
helper = subprocess.Popen([BIN, "send", "--to", "planner", "--intent", "message",
                           "--payload", "the invoice mail says: pay ACME 10 EUR", *CONN,
                           "--key", os.path.join(DIR, "helper.key")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-extensions", "--disable-background-networking",
            "--disable-sync", "--disable-component-update", "--window-size=1280,900"):
    options.add_argument(arg)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.set_page_load_timeout(WAIT)
try:
    driver.get(URL)
    WebDriverWait(driver, WAIT, poll_frequency=0.1).until(
        lambda d: "alice" in d.find_element(By.ID, "who").text)
    check("the page loads, its script runs under the CSP, and says who it is", True)

    # Its own hold: shown with why, and no button that would fail.
    card = card_for(driver, ALICE_OWN)
    check("its own hold says why it may not decide, shows no buttons",
          "its own message" in card.text and "You may not decide on this" in card.text
          and not card.find_element(By.CSS_SELECTOR, ".actions").is_displayed(), card.text)

    # A payment caused by a restricted message appears without a reload.
    mark = driver.execute_script("window.__noReload = 1; return window.__noReload;")
    cause = field(helper.communicate(timeout=WAIT)[0], "seq")
    items = "".join("item %02d: consulting, 1 h, 0.25 EUR\n" % i for i in range(1, 41))
    payload = "amount=10 EUR\nto=ACME <b>bold</b>\x1b[2J\n" + items
    line = bulkhead("planner", "send", "--to", "payments", "--intent", "finance",
                    "--action", "transfer.create", "--resource", "invoice:42",
                    "--payload", payload, "--id", "pay-42",
                    "--justification", "paying invoice 42, as the mail from ACME asked",
                    "--cause", cause)
    hold = field(line, "approval")
    check("a restricted payment is held", hold.startswith("h-") and "RESTRICTED" in line, line)
    card = card_for(driver, hold)
    check("it appears on the open page, no reload",
          driver.execute_script("return window.__noReload;") == mark)
    text = card.text
    check("sender -> recipient, class, action, justification, restricted mark",
          "planner -> payments" in text and "finance" in text and "transfer.create" in text
          and "paying invoice 42, as the mail from ACME asked" in text and "RESTRICTED" in text, text)
    check("votes and quorum, time left", "0 of 1" in text and "left" in text, text)
    pre = card.find_element(By.CSS_SELECTOR, "pre.payload")
    check("the payload, escaped: markup as text, ESC as \\x1b",
          "to=ACME <b>bold</b>\\x1b[2J" in pre.text and not pre.find_elements(By.TAG_NAME, "b"),
          pre.text[:200])
    check("only the first KiB, then \"show all\"", len(pre.text) < 1100 and "item 40" not in pre.text)
    causes = card.find_elements(By.CSS_SELECTOR, ".causes li")
    check("its cause: sender, class, restricted",
          len(causes) == 1 and "helper -> planner" in causes[0].text and "message" in causes[0].text
          and "RESTRICTED" in causes[0].text and causes[0].get_attribute("data-seq") == cause,
          [c.text for c in causes])
    check("what approving unlocks: the recipient's reach, from the blast radius",
          "finance to bank" in card.find_element(By.CSS_SELECTOR, ".unlocks").text)

    # Screenshots at exact viewport sizes: a desktop's, a phone's.
    for name, width, height, mobile in (("console-desktop", 1280, 900, False),
                                        ("console-phone", 390, 844, True)):
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1,
                                "mobile": mobile})
        driver.execute_script("window.scrollTo(0, 0);")
        time.sleep(0.3)  # layout after the resize; nothing to wait on
        driver.save_screenshot(os.path.join(SHOTS, name + ".png"))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    card.find_element(By.CSS_SELECTOR, "button.show-all").click()
    WebDriverWait(driver, WAIT, poll_frequency=0.1).until(lambda d: "item 40" in pre.text)
    check("show all: the whole payload", True)

    # Approve: payments receives exactly that message.
    recv = subprocess.Popen([BIN, "recv", "--count", "1", "--wait", str(WAIT * 1000), *CONN,
                             "--key", os.path.join(DIR, "payments.key")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    card.find_element(By.CSS_SELECTOR, "button.approve").click()
    WebDriverWait(driver, WAIT, poll_frequency=0.1).until(
        lambda d: card.find_element(By.CSS_SELECTOR, ".result").text.startswith("OK"))
    check("approve: the result shows at once", True)
    history_entry(driver, hold, "released")
    check("the hold moves to the history, released", not driver.find_elements(
        By.CSS_SELECTOR, 'article.hold[data-id="%s"]' % hold))
    out, _ = recv.communicate(timeout=WAIT)
    check("the recipient receives exactly that message",
          recv.returncode == 0 and "id=pay-42" in out and "from=planner" in out
          and "to=ACME <b>bold</b>\\x1b[2J" in out and out.count("seq=") == 1, out)

    # Deny with a reason: the sender, still connected, reads it.
    sender = subprocess.Popen([AGENT, *CONN, "--key", os.path.join(DIR, "planner.key"), "send",
                               "--to", "payments", "--intent", "finance", "--payload", "amount=99",
                               "--justification", "second payment", "--wait-held", str(WAIT * 1000)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    card = WebDriverWait(driver, WAIT, poll_frequency=0.1).until(
        lambda d: next((c for c in d.find_elements(By.CSS_SELECTOR, "article.hold")
                        if "second payment" in c.text), False))
    denied = card.get_attribute("data-id")
    card.find_element(By.CSS_SELECTOR, "button.deny").click()
    WebDriverWait(driver, WAIT, poll_frequency=0.1).until(
        lambda d: card.find_element(By.CSS_SELECTOR, ".result").text.startswith("REASON"))
    check("deny without a reason is not sent", driver.find_elements(
        By.CSS_SELECTOR, 'article.hold[data-id="%s"]' % denied) != [])
    card.find_element(By.CSS_SELECTOR, "input.reason").send_keys("not in this month's budget")
    card.find_element(By.CSS_SELECTOR, "button.deny").click()
    history_entry(driver, denied, "denied")
    out, _ = sender.communicate(timeout=WAIT)
    check("deny: the sender reads the reason",
          "denied" in out and "not in this month's budget" in out and "alice" in out, out)

    # Another approver's decision shows live. (carol, not alice: a command
    # run with the console's own key would take its notices over; see README.)
    line = bulkhead("planner", "send", "--to", "payments", "--intent", "finance", "--payload", "amount=5",
                    "--justification", "third payment")
    third = field(line, "approval")
    card_for(driver, third)
    carol = bulkhead("carol", "deny", third, "--reason", "duplicate of invoice 42")
    entry = history_entry(driver, third, "denied")
    check("a decision by another approver shows live, with who and why",
          "carol" in entry.text and "duplicate of invoice 42" in entry.text, entry.text + carol)

    # One caused by alice's own message: it appears live, blocked, with why.
    line = bulkhead("planner", "send", "--to", "payments", "--intent", "finance", "--payload", "amount=7",
                    "--justification", "paying the consultant alice named", "--cause", ALICE_CAUSE)
    card = card_for(driver, field(line, "approval"))
    WebDriverWait(driver, WAIT, poll_frequency=0.1).until(lambda d: "among the causes" in card.text)
    check("one whose causes hold its own message says why, shows no buttons",
          not card.find_element(By.CSS_SELECTOR, ".actions").is_displayed()
          and "alice -> planner" in card.text, card.text)

    errors = [e for e in driver.get_log("browser")
              if e.get("level") == "SEVERE" and "favicon" not in e.get("message", "")]
    check("no errors in the browser (no CSP violation)", not errors, errors)
except Exception as e:  # a step that timed out or broke: name it
    check("the steps run to their end (%s after: %s)" % (type(e).__name__, last), False,
          (getattr(e, "msg", None) or str(e) or repr(e)).splitlines()[0])
finally:
    driver.quit()
sys.exit(1 if failures else 0)
