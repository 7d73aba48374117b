#!/usr/bin/env python3
"""The dashboard in a real browser (headless Chromium through WebDriver), against the running stack.

Signs in (a wrong token first), checks the session cookie's flags and that scripts cannot read it, sees the
charts, watches a hot lead posted to lead-ingest arrive in the live alert feed, filters the lead table to it,
opens it and records an outcome. Exits non-zero with the reason, and a screenshot, on the first failure.
"""
import argparse
import json
import sys
import time
import urllib.request
import uuid

from common import chromium, get_json
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait


def post_json(url, body, token):
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status




def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin", required=True)
    parser.add_argument("--ingest", required=True)
    parser.add_argument("--token", default="dev-admin-token")
    parser.add_argument("--ingest-key", default="dev-ingest-key")
    parser.add_argument("--screenshot", required=True)
    args = parser.parse_args()

    driver = chromium(1440)
    wait = WebDriverWait(driver, 30)
    step = "start"
    try:
        step = "unsigned visit redirects to sign-in"
        driver.get(args.admin + "/admin")
        wait.until(EC.url_contains("/admin/login"))

        step = "wrong token is refused"
        driver.find_element(By.NAME, "token").send_keys("not-the-token")
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".error"), "not valid"))

        step = "right token signs in"
        driver.find_element(By.NAME, "token").send_keys(args.token)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(EC.presence_of_element_located((By.ID, "kpis")))

        step = "session cookie is HttpOnly, SameSite=Strict, scoped to /admin"
        cookie = driver.get_cookie("lead_admin")
        assert cookie, "no lead_admin cookie"
        assert cookie.get("httpOnly") is True, cookie
        assert cookie.get("sameSite") == "Strict", cookie
        assert cookie.get("path") == "/admin", cookie
        assert "lead_admin" not in driver.execute_script("return document.cookie"), "a script can read the session"

        step = "charts are drawn"
        charts = driver.find_elements(By.CSS_SELECTOR, "section.card svg")
        assert len(charts) >= 4, f"{len(charts)} charts"

        step = "live feed connects"
        wait.until(EC.text_to_be_present_in_element((By.ID, "feed-state"), "live"))

        step = "a hot lead arrives in the live feed"
        tag = uuid.uuid4().hex[:10]
        name = f"Browser {tag}"
        status = post_json(args.ingest + "/v1/interactions", {
            "session_id": f"browser-{tag}", "type": "face_analysis", "source_page": "/face-analysis",
            "contact": {"name": name, "email": f"{tag}@example.com"},
            "data": {"recommendations": [{"procedure": "Rhinoplasty"}], "urgency": "immediate"},
        }, args.ingest_key)
        assert status == 202, status
        lead_id = None
        deadline = time.time() + 30
        while lead_id is None and time.time() < deadline:
            leads = get_json(f"{args.admin}/v1/leads?q={tag}", args.token)["leads"]
            lead_id = leads[0]["id"] if leads else None
            time.sleep(0.2)
        assert lead_id, "the lead never appeared in the API"
        wait.until(EC.text_to_be_present_in_element((By.ID, "feed"), f"lead {lead_id}"))
        driver.save_screenshot(args.screenshot)

        step = "the lead table filters to it"
        driver.get(args.admin + "/admin/leads")
        search = driver.find_element(By.NAME, "q")
        search.send_keys(tag)
        Select(driver.find_element(By.NAME, "sort")).select_by_value("heat")
        driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
        wait.until(EC.url_contains(f"q={tag}"))
        rows = driver.find_elements(By.CSS_SELECTOR, "#leads tbody tr")
        assert len(rows) == 1 and name in rows[0].text, [row.text for row in rows]

        step = "the lead page records an outcome"
        rows[0].find_element(By.LINK_TEXT, name).click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "lead-name"), name))
        Select(driver.find_element(By.ID, "outcome-status")).select_by_value("booked")
        driver.find_element(By.CSS_SELECTOR, "#outcome-form button").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "lead-status"), "booked"))
        assert get_json(f"{args.admin}/v1/leads/{lead_id}", args.token)["status"] == "booked"

        step = "signing out ends the session"
        driver.find_element(By.CSS_SELECTOR, "header.top form button").click()
        wait.until(EC.url_contains("/admin/login"))
        driver.get(args.admin + "/admin/leads")
        wait.until(EC.url_contains("/admin/login"))
        print(json.dumps({"browser": "ok", "lead_id": lead_id, "screenshot": args.screenshot}))
        return 0
    except Exception as error:  # noqa: BLE001 - report any failure with the step it happened in
        failure = args.screenshot.replace(".png", "-failure.png")
        try:
            driver.save_screenshot(failure)
        except Exception:  # noqa: BLE001
            pass
        print(f"browser test failed at '{step}': {type(error).__name__}: {error} (screenshot: {failure})", file=sys.stderr)
        return 1
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
