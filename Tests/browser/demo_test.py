#!/usr/bin/env python3
"""The demo marketplace page in headless Chromium, as a visitor: browse, run the face analysis, see the
contact section appear when lead-conversion decides to prompt, submit contact details. Then, through the
admin API: the lead exists and carries the visitor's earlier anonymous interactions.
Prints one JSON line (lead id, session id) on success; exits non-zero with the failing step otherwise."""
import argparse
import json
import sys
import time
import urllib.request
import uuid

from common import chromium, get_json
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait




def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ingest", required=True)
    parser.add_argument("--admin", required=True)
    parser.add_argument("--token", default="dev-admin-token")
    parser.add_argument("--screenshot", required=True)
    args = parser.parse_args()

    driver = chromium(1280)
    wait = WebDriverWait(driver, 45)
    step = "start"
    try:
        step = "the demo page loads and tracks the visit"
        driver.get(args.ingest + "/demo")
        wait.until(lambda d: d.execute_script("return window.leadCapture && window.leadCapture.stats().sent >= 1"))
        session = driver.execute_script("return window.leadCapture.sessionId()")
        assert driver.find_element(By.ID, "contact-capture").is_displayed() is False, "the contact section shows too early"

        step = "the face analysis is tracked"
        driver.find_element(By.ID, "analyze").click()
        wait.until(EC.visibility_of_element_located((By.ID, "analysis")))

        step = "the contact section appears when the service prompts"
        wait.until(EC.visibility_of_element_located((By.ID, "contact-capture")))
        driver.save_screenshot(args.screenshot)

        step = "the visitor submits contact details"
        name = f"Demo Visitor {uuid.uuid4().hex[:8]}"
        driver.find_element(By.ID, "name").send_keys(name)
        driver.find_element(By.ID, "phone").send_keys(f"+91 98{uuid.uuid4().int % 10**8:08d}")
        driver.find_element(By.ID, "email").send_keys(f"{uuid.uuid4().hex[:10]}@example.com")
        driver.find_element(By.ID, "send-contact").click()
        wait.until(EC.visibility_of_element_located((By.ID, "thanks")))
        wait.until(lambda d: d.execute_script("return window.leadCapture.pending() === 0"))

        step = "the lead reaches the admin API with its anonymous history"
        lead = None
        deadline = time.time() + 30
        while lead is None and time.time() < deadline:
            leads = get_json(f"{args.admin}/v1/leads?q={urllib.parse.quote(name)}", args.token)["leads"]
            lead = leads[0] if leads else None
            if lead is None:
                time.sleep(0.3)
        assert lead, "no lead for the visitor"
        detail = get_json(f"{args.admin}/v1/leads/{lead['id']}", args.token)
        types = [i["interaction_type"] for i in detail["interactions"]]
        assert "page_view" in types and "face_analysis" in types, types
        assert all(i["session_id"] == session for i in detail["interactions"]), "another session's interactions"
        print(json.dumps({"lead_id": lead["id"], "session_id": session, "interactions": types}))
        return 0
    except Exception as error:  # noqa: BLE001 - report the step
        failure = args.screenshot.replace(".png", "-failure.png")
        try:
            driver.save_screenshot(failure)
            logs = driver.get_log("browser")
        except Exception:  # noqa: BLE001
            logs = []
        print(f"demo test failed at '{step}': {type(error).__name__}: {error} (screenshot: {failure}; console: {logs[-5:]})", file=sys.stderr)
        return 1
    finally:
        driver.quit()


if __name__ == "__main__":
    import urllib.parse  # noqa: E402
    sys.exit(main())
