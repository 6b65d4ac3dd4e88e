"""Horizon in a real browser: headless Chromium logs in as admin at the public URL and opens the main project pages.

TLS is verified for real: the cloud's CA is trusted in a throwaway NSS database (Chromium reads $HOME/.pki/nssdb),
never skipped with --ignore-certificate-errors. Selenium drives Debian's chromedriver, so nothing is downloaded.
Screenshots of every page go to artifacts/horizon/ in the repository."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "artifacts" / "horizon"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Catalog types under which a volume service (cinder) may register.
VOLUME_TYPES = {"block-storage", "volumev3", "volume"}
PAGE_TIMEOUT = 120


@pytest.fixture(scope="module")
def public_url(inventory):
    hostvars = inventory["hostvars"][inventory["groups"]["controller"][0]]
    host = hostvars.get("public_vip_address", hostvars["internal_vip_address"])
    registry = yaml.safe_load((REPO / "services" / "horizon.yml").read_text())
    port = registry["components"]["dashboard"]["haproxy"]["frontend_port"]
    return f"https://{host}/" if port == 443 else f"https://{host}:{port}/"


@pytest.fixture(scope="module")
def browser(tmp_path_factory, ca_file):
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).is_file()]
    missing += [] if shutil.which("certutil") else ["certutil"]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: install chromium chromium-driver libnss3-tools (make deps)")
    home = tmp_path_factory.mktemp("browser-home")
    nssdb = f"sql:{home / '.pki' / 'nssdb'}"
    (home / ".pki" / "nssdb").mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", nssdb, "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", nssdb, "-n", "Stackwright CA", "-t", "C,,", "-i", str(ca_file)],
                   check=True, capture_output=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        # Chromium's sandbox refuses to run as root (the deploy host runs the tests as root).
        "--no-sandbox",
        "--disable-dev-shm-usage",
        # The VIPs are reached directly, never through a proxy from the environment.
        "--no-proxy-server",
        "--no-first-run",
        "--password-store=basic",
        "--window-size=1400,1000",
        f"--user-data-dir={home / 'profile'}",
    ):
        options.add_argument(arg)
    # Given the driver's path, Selenium skips Selenium Manager (which would download one).
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER, env=dict(os.environ, HOME=str(home)))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    yield driver
    driver.quit()


def _screenshot(driver, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot written to {path}"
    return path


def _wait_for(driver, locator, what):
    try:
        return WebDriverWait(driver, PAGE_TIMEOUT).until(expected_conditions.presence_of_element_located(locator))
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text[:500]
        shot = _screenshot(driver, "failure")
        pytest.fail(f"{what} did not appear at {driver.current_url} ({driver.title!r}, screenshot {shot}):\n{body}")


@pytest.fixture(scope="module")
def dashboard(browser, public_url, secrets):
    """The browser, logged in as admin; a TLS error shows Chromium's interstitial instead of the login form."""
    browser.get(public_url)
    _wait_for(browser, (By.ID, "id_username"), "the login form")
    _screenshot(browser, "login")
    browser.find_element(By.ID, "id_username").send_keys("admin")
    browser.find_element(By.ID, "id_password").send_keys(secrets["keystone_admin_password"])
    browser.find_element(By.ID, "loginBtn").click()
    # Either a dashboard page or the login form again with its error.
    WebDriverWait(browser, PAGE_TIMEOUT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".page-header h1, #loginBtn ~ .alert-danger, form .alert-danger")
    )
    return browser


def test_login_lands_on_a_dashboard_page_with_secure_cookies(dashboard, public_url):
    assert dashboard.current_url.startswith(public_url)
    assert "/auth/login" not in dashboard.current_url, dashboard.find_element(By.TAG_NAME, "body").text[:500]
    cookies = {c["name"]: c for c in dashboard.get_cookies()}
    assert cookies["sessionid"]["secure"] and cookies["sessionid"]["httpOnly"], cookies["sessionid"]
    assert cookies["csrftoken"]["secure"], cookies["csrftoken"]
    _screenshot(dashboard, "home")


@pytest.mark.parametrize(("path", "heading"), [
    ("project/instances/", "Instances"),
    ("project/volumes/", "Volumes"),
    ("project/networks/", "Networks"),
])
def test_project_page_opens_without_error(dashboard, public_url, cli, poll, path, heading):
    if heading == "Volumes" and not VOLUME_TYPES & {entry["Type"] for entry in cli("catalog", "list")}:
        pytest.skip("no volume service (block-storage/volumev3) in the catalog: Horizon has no volume pages")
    dashboard.get(public_url + path)
    header = _wait_for(dashboard, (By.CSS_SELECTOR, ".page-header h1"), f"the {heading} heading")
    WebDriverWait(dashboard, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    # Server-side alerts render with the page; the toasts of the page's own AJAX calls may come a little later.
    errors = poll(lambda: [e.text for e in dashboard.find_elements(By.CSS_SELECTOR, ".alert-danger") if e.text],
                  attempts=5, delay=1.0)
    shot = _screenshot(dashboard, heading.lower())
    assert header.text.strip() == heading, f"{path}: heading {header.text!r} (screenshot {shot})"
    for marker in ("Server error", "Page Not Found", "Forbidden"):
        assert marker not in dashboard.title, f"{path}: {dashboard.title!r} (screenshot {shot})"
    assert not errors, f"{path}: {errors} (screenshot {shot})"
    assert dashboard.current_url == public_url + path
