"""The cardholder self-service page, driven in headless Chromium against ``settlement serve`` started here.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and the
``selenium`` package. The browser reaches only http://127.0.0.1:PORT of that server.
"""

import datetime
import json
import secrets
import time
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from adapters.server.client import Client
from settlement import signing
from tests.server_harness import running_server
from tests.services_support import (
    HOSPITAL,
    PERSONS,
    card_fields,
    register_node,
    settle_node,
    upload_node,
)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def server(tmp_path):
    with running_server(tmp_path, f"sqlite:///{tmp_path / 'ledger.sqlite3'}", PERSONS, [HOSPITAL]) as port:
        yield port


def api(port, path, data):
    body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    headers = signing.signed_headers(HOSPITAL["fixmedins_code"], HOSPITAL["secret"].encode(), body, int(time.time()), secrets.token_hex(16))
    headers["content-type"] = "application/json; charset=utf-8"
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["code"] == 0, answer
    return answer["data"]


def seed(port):
    """Give the demo cardholder an activated card, two contributions, a job and one settlement."""
    api(port, "/api/card/apply", card_fields("K00000000001", "APP-DEMO-1"))
    for step in ("start-production", "finish-production", "issue", "activate"):
        api(port, f"/api/card/{step}", {"card_no": "K00000000001"})
    api(port, "/api/card/apply", card_fields("K00000000002", "APP-DEMO-2", psn_no="SVC-0002"))
    for period in ("2024-01", "2024-02"):
        api(port, "/api/pension/contribute", {"psn_no": "SVC-0001", "period": period, "base": "10000.00"})
    api(port, "/api/employment/job", {"psn_no": "SVC-0001", "date": "2020-03-01", "employer": "测试单位（虚构）"})

    client = Client("127.0.0.1", port, fixmedins_code=HOSPITAL["fixmedins_code"], secret=HOSPITAL["secret"])
    try:
        client.sign_in()
        moment = f"{datetime.datetime.now():%Y-%m-%d %H:%M:%S}"
        answer = client.call("2201", register_node("SVC-0001", "03", "K00000000001", moment, "PAGE1"))
        assert answer["infcode"] == 0, answer["err_msg"]
        mdtrt_id = answer["output"]["data"]["mdtrt_id"]
        assert client.call("2204", upload_node("SVC-0001", mdtrt_id, "B1", moment))["infcode"] == 0
        answer = client.call("2207", settle_node("SVC-0001", "03", "K00000000001", mdtrt_id, "B1"))
        assert answer["infcode"] == 0, answer["err_msg"]
    finally:
        client.close()
    return api(port, "/api/card/verification-code", {"psn_no": "SVC-0001"})["code"]


@pytest.fixture
def browser(tmp_path):
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--lang=zh-CN", "--window-size=1200,1600", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def submit_form(driver, number, code):
    """Fill the form with the keyboard only: type, Tab to the next field, Enter to submit.

    Returns once the result page has replaced the form, so the caller reads the new page.
    """
    # A mark on the form page's window: the next page has a fresh window without it. Waiting
    # for the old <html> element to go stale instead failed in newer chromedriver releases,
    # which report a node of an unloaded page as an "inspector error".
    driver.execute_script("window.formPageMark = true;")
    field = driver.find_element(By.ID, "number")
    field.clear()
    field.send_keys(number, Keys.TAB)
    focused = driver.switch_to.active_element
    assert focused.get_attribute("id") == "code"
    focused.send_keys(code, Keys.ENTER)
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.readyState === 'complete' && window.formPageMark === undefined;")
    )


def test_self_service_lookup(server, browser, tmp_path):
    code = seed(server)
    base = f"http://127.0.0.1:{server}/self-service"

    browser.get(base)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    for input_id, label in (("number", "社会保障卡号或身份证号码"), ("code", "验证码")):
        assert browser.find_element(By.CSS_SELECTOR, f"label[for='{input_id}']").text == label

    wrong = "000000" if code != "000000" else "111111"
    submit_form(browser, "990000196005050011", wrong)
    alert = browser.find_element(By.CSS_SELECTOR, "[role='alert']")
    assert "[8013]" in alert.text
    assert "验证码错误" in alert.text
    assert not browser.find_elements(By.ID, "pension-balance")

    submit_form(browser, "990000196005050011", code)
    assert browser.find_element(By.ID, "holder").text == "持卡人：测**"
    stages = browser.find_elements(By.CSS_SELECTOR, "#card-progress-0 tbody tr")
    today = datetime.date.today().isoformat()
    assert [row.text.split() for row in stages] == [
        ["已申请", today], ["制卡中", today], ["已制成", today], ["已发放至网点", today], ["已启用", today]
    ]
    assert "已启用" in browser.find_element(By.CSS_SELECTOR, "#card-progress-0 caption").text
    # 500.00 loaded, then the 30.00 visit paid in cash (acct_used_flag 0).
    assert browser.find_element(By.ID, "medical-balance").text == "500.00"
    settlements = browser.find_elements(By.CSS_SELECTOR, "#settlements tbody tr")
    assert len(settlements) == 1
    assert settlements[0].find_elements(By.TAG_NAME, "td")[2].text == "30.00"
    assert browser.find_element(By.ID, "pension-balance").text == "1600.00"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#pension-entries tbody tr")) == 2
    assert browser.find_element(By.ID, "employment-status").text == "就业"

    screenshot = tmp_path / "self-service.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The code was used once, so entering it again is rejected.
    browser.get(base)
    submit_form(browser, "K00000000001", code)
    assert "[8013]" in browser.find_element(By.CSS_SELECTOR, "[role='alert']").text


def test_self_service_stylesheet_is_local(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server}/self-service", timeout=10) as response:
        page = response.read().decode("utf-8")
    assert "http://" not in page
    assert "https://" not in page
    with urllib.request.urlopen(f"http://127.0.0.1:{server}/self-service/style.css", timeout=10) as response:
        assert response.headers["content-type"].startswith("text/css")


def test_self_service_english_form(server, browser):
    browser.get(f"http://127.0.0.1:{server}/self-service?lang=en")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert browser.find_element(By.CSS_SELECTOR, "label[for='code']").text == "Verification code"
    submit_form(browser, "990000196005050011", "123456")
    alert = browser.find_element(By.CSS_SELECTOR, "[role='alert']")
    assert "[8013]" in alert.text
    assert "verification code is wrong" in alert.text
