"""Admins edit reply templates in the dashboard: checked in the sandbox, previewed, saved
as overrides that the next draft uses, and reverted to the file."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from playwright.async_api import async_playwright

from listener.app import init_app
from listener.store.tone_templates import all_overrides
from tests.web.logins import PASSWORD, create_user, login_as
from tests.web.test_api import AUTH, listed, mention, push
from tests.web.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS

EDIT = "/admin/templates/twitter/apology/tr"


@pytest.fixture
async def client(aiohttp_client: Any, services: Any) -> Any:
    return await aiohttp_client(init_app(services, background=False))


async def tweet_id(client: Any) -> int:
    await push(client, mention("t-1", "Kargom nerede?", handle="jdoe", name="Jane Doe"))
    [item] = await listed(client)
    return item["id"]


async def api_draft(client: Any, mention_id: int, intent: str = "apology") -> dict[str, Any]:
    response = await client.get(f"/api/v1/mentions/{mention_id}/draft",
                                params={"intent": intent, "lang": "tr"}, headers=AUTH)
    assert response.status == 200, await response.text()
    return await response.json()


def textarea(page: str) -> str:
    found = re.search(r'<textarea name="body"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, page
    return html.unescape(found.group(1))


async def test_an_admin_edits_a_template_and_the_next_draft_uses_it(
        client: Any, services: Any) -> None:
    item = await tweet_id(client)
    file_draft = await api_draft(client, item)
    assert file_draft["template_path"] == "templates/tones/twitter/apology.tr.j2"
    token = await login_as(client, services, role="admin", name="root")

    listing = await (await client.get("/admin/templates")).text()
    assert 'data-folder="twitter" data-intent="apology"' in listing
    assert 'data-folder="forum"' not in listing  # only channels this config can meet
    editor = await client.get(EDIT)
    assert editor.status == 200
    page = await editor.text()
    assert textarea(page).startswith("{% if mention.author.handle %}@{{")
    assert 'id="template-preview"' in page and "@deniz_y" in page

    body = ("@{{ mention.author.handle }} Çok özür dileriz {{ mention.author.first_name }}, "
            "{{ agent.name }} hemen bakıyor.")
    saved = await client.post(EDIT, data={"body": body, "action": "save", "csrf_token": token})
    assert saved.status == 200
    page = await saved.text()
    assert 'id="template-done"' in page and 'data-source="override"' in page
    assert "Edited by root" in page and 'id="revert-button"' in page

    edited = await api_draft(client, item)
    assert edited["text"] == "@jdoe Çok özür dileriz Jane, Ayşe hemen bakıyor."  # assigned to ayse
    assert edited["template_path"] == "override:twitter/apology.tr"
    reply = await client.post(f"/api/v1/mentions/{item}/reply", json={"template": "apology"},
                              headers=AUTH)
    assert (await reply.json())["draft"] == edited["text"]
    listing = await (await client.get("/admin/templates")).text()
    row = listing.split('data-folder="twitter" data-intent="apology"')[1].split("</tr>")[0]
    assert 'data-lang="tr" data-source="override"' in row and "root" in row
    assert 'data-lang="en" data-source="file"' in row

    reverted = await client.post(EDIT + "/revert", data={"csrf_token": token})
    assert reverted.status == 200 and 'data-source="file"' in await reverted.text()
    assert (await api_draft(client, item))["text"] == file_draft["text"]


async def test_broken_or_escaping_templates_are_refused_with_the_reason(
        client: Any, services: Any) -> None:
    item = await tweet_id(client)
    before = await api_draft(client, item)
    token = await login_as(client, services, role="admin", name="root")
    for body, reason in (
        ("Merhaba {% if mention.text %}", "line 1"),
        ("{{ mention.__class__.__mro__ }}", "unsafe"),
        ("Merhaba {{ musteri.name }}", "musteri"),
        ("   ", "A template cannot be empty."),
    ):
        refused = await client.post(EDIT, data={"body": body, "action": "save",
                                                "csrf_token": token})
        assert refused.status == 422, body
        page = await refused.text()
        assert 'id="template-error"' in page and reason in html.unescape(page), body
        assert textarea(page) == body  # what the admin typed stays in the editor
    assert await api_draft(client, item) == before


async def test_preview_renders_a_sample_without_saving_and_escapes_everything(
        client: Any, services: Any) -> None:
    item = await tweet_id(client)
    before = await api_draft(client, item)
    token = await login_as(client, services, role="admin", name="root", agent_id="ayse")
    body = "</textarea><script>alert(1)</script> {{ mention.text }} – {{ agent.name }}"
    previewed = await client.post(EDIT, data={"body": body, "action": "preview",
                                              "csrf_token": token})
    assert previewed.status == 200
    page = await previewed.text()
    assert "<script>alert(1)" not in page and textarea(page) == body
    preview = html.unescape(page.split('id="template-preview" dir="auto">')[1]
                            .split("</pre>")[0])
    assert "Siparişim iki haftadır gelmedi" in preview and "{{ 7*7 }}" in preview
    assert preview.endswith("– Ayşe") and "49" not in preview
    assert await api_draft(client, item) == before


async def test_only_admins_manage_templates(client: Any, services: Any) -> None:
    for role in ("agent", "lead"):
        token = await login_as(client, services, role=role, name=f"user-{role}")
        for method, path in (("GET", "/admin/templates"), ("GET", EDIT), ("POST", EDIT),
                             ("POST", EDIT + "/revert")):
            response = await client.request(method, path, allow_redirects=False,
                                            data={"body": "x", "action": "save",
                                                  "csrf_token": token})
            assert response.status == 403, (role, method, path)
        client.session.cookie_jar.clear()
    async with services.store.read() as session:
        assert await all_overrides(session) == {}


async def test_unknown_templates_are_not_found_and_turkish_admins_read_turkish(
        client: Any, services: Any) -> None:
    await login_as(client, services, role="admin", name="root")
    for path in ("/admin/templates/nowhere/apology/tr", "/admin/templates/twitter/refund/tr",
                 "/admin/templates/twitter/apology/de"):
        assert (await client.get(path)).status == 404, path
    page = await (await client.get("/admin/templates",
                                   headers={"Accept-Language": "tr-TR,tr"})).text()
    assert "Yanıt şablonları" in page and "social (ton grubu)" in page
    assert "Uzman ekibe aktar" in page


@pytest.mark.browser
async def test_an_admin_previews_and_saves_a_template_in_the_browser(
        client: Any, services: Any, tmp_path: Any) -> None:
    """Real Chromium under the strict CSP: nothing on the pages is blocked or broken."""
    item = await tweet_id(client)
    await create_user(services, "root", "admin", "ayse")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                   args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="tr-TR")
            failures: list[str] = []
            page.on("console", lambda m: failures.append(m.text) if m.type == "error" else None)
            await page.goto(str(client.make_url(f"/login?next={EDIT}")))
            await page.fill("#name", "root")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"**{EDIT}")
            assert await page.inner_text("h1") == "twitter · Özür · Türkçe"

            await page.fill("#template-body", "Merhaba {{ mention.author.first_name }} – "
                                              "{{ mention.text }}")
            await page.click("#preview-button")
            preview = await page.inner_text("#template-preview")
            assert preview.startswith("Merhaba Deniz – Siparişim") and "{{ 7*7 }}" in preview
            assert await page.inner_text("#template-length") == f"{len(preview)} / 280 karakter"
            await page.click("#save-button")
            assert "Kaydedildi" in await page.inner_text("#template-done")
            await page.screenshot(path=tmp_path / "template-editor.png", full_page=True)
            await page.click(".crumbs a")
            cell = page.locator('tr[data-folder="twitter"][data-intent="apology"] '
                                'td[data-lang="tr"]')
            assert (await cell.inner_text()).startswith("düzenlendi\nroot")
            await page.screenshot(path=tmp_path / "templates.png", full_page=True)
            assert failures == []
        finally:
            await browser.close()
    assert (await api_draft(client, item))["text"] == "Merhaba Jane – Kargom nerede?"
