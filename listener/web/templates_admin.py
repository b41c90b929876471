"""Admins edit the reply templates: every channel, intent and language, where each comes
from (its file, a less specific folder, or an edit saved here), an editor that checks a
template in the sandbox and previews it on a sample mention before saving, and a way
back to the file.

Edits are stored in the database (`ToneTemplate`), so they survive upgrades that
replace `templates/tones/`, and every replica drafts with them at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from connectors import CONNECTORS
from listener.services import SERVICES, Services
from listener.store import tone_templates
from listener.web.access import current_user, requires
from listener.web.pages import render
from responders.composer import Draft
from responders.drafts import GROUPS, LANGS, BadTemplate, Overrides, UnknownTemplate

routes = web.RouteTableDef()
EDIT_PATH = ("/admin/templates/{folder:[a-z0-9][a-z0-9_.-]{0,29}}"
             "/{intent:[a-z0-9_-]{1,50}}/{lang:[a-z]{2}}")
# Channels every installation can meet besides the source kinds: forms and e-mail.
BUILT_IN_CHANNELS = ("email", "web")


@dataclass(frozen=True)
class Cell:
    """Where the draft for one folder, intent and language comes from."""

    source: str  # "override" | "file" | "inherited" | "missing"
    origin: str  # the folder it comes from
    lang: str  # the template's language (English when the asked one is missing)


def channel_kinds(svc: Services) -> dict[str, str]:
    """Channel → source kind, for channels named otherwise than their kind (forum)."""
    return {s.channel: s.kind for s in svc.config.sources
            if getattr(s, "channel", None) and s.channel != s.kind}


def folders(svc: Services) -> list[str]:
    """The tone groups, then every channel Listener knows or the config names."""
    known = {*CONNECTORS, *BUILT_IN_CHANNELS, *channel_kinds(svc),
             *svc.composer.templates.folders()} - set(GROUPS)
    return [*GROUPS, *sorted(known)]


def cell(svc: Services, folder: str, intent: str, lang: str, overrides: Overrides) -> Cell:
    if (folder, intent, lang) in overrides:
        return Cell("override", folder, lang)
    if svc.composer.templates.file_body(folder, intent, lang) is not None:
        return Cell("file", folder, lang)
    try:
        found = svc.composer.templates.find(folder, intent, lang,
                                            channel_kinds(svc).get(folder), overrides)
    except UnknownTemplate:
        return Cell("missing", "", lang)
    return Cell("inherited", found.folder, found.lang)


@routes.get("/admin/templates")
@requires("admin")
async def templates_page(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    async with svc.store.read() as session:
        saved = await tone_templates.all_overrides(session)
    overrides = {key: row.body for key, row in saved.items()}
    intents = svc.composer.intents()
    rows = [{"folder": folder, "intent": intent, "group": folder in GROUPS,
             "limit": svc.composer.limits.get(folder),
             "cells": {lang: cell(svc, folder, intent, lang, overrides) for lang in LANGS},
             "edits": {lang: saved.get((folder, intent, lang)) for lang in LANGS}}
            for folder in folders(svc) for intent in intents]
    return render(request, "admin_templates.html", rows=rows, langs=LANGS)


def _key(request: web.Request) -> tuple[str, str, str]:
    svc = request.app[SERVICES]
    folder, intent, lang = (request.match_info[k] for k in ("folder", "intent", "lang"))
    if folder not in folders(svc) or intent not in svc.composer.intents() or lang not in LANGS:
        raise web.HTTPNotFound(text=f"no template {folder}/{intent}.{lang} to edit")
    return folder, intent, lang


async def _editor(request: web.Request, key: tuple[str, str, str], body: str | None = None,
                  error: str | None = None, done: str | None = None,
                  status: int = 200) -> web.Response:
    """The edit page; `body` is what the admin typed (else the template in use)."""
    svc = request.app[SERVICES]
    folder, intent, lang = key
    async with svc.store.read() as session:
        saved = await tone_templates.all_overrides(session)
    overrides = {k: row.body for k, row in saved.items()}
    where = cell(svc, folder, intent, lang, overrides)
    if body is None:
        body = _body_in_use(svc, key, where, overrides)
    preview: Draft | None = None
    if error is None and body.strip():
        try:
            preview = svc.composer.check(body, folder, intent, lang, _signer(request))
        except (BadTemplate, UnknownTemplate) as exc:
            error = str(exc)
    return render(request, "admin_template_edit.html", status=status, folder=folder,
                  intent=intent, tone_lang=lang, body=body, where=where, edit=saved.get(key),
                  preview=preview, preview_agent=_signer(request), error=error, done=done)


def _body_in_use(svc: Services, key: tuple[str, str, str], where: Cell,
                 overrides: Overrides) -> str:
    if where.source == "override":
        return overrides[key]
    if where.source == "missing":
        return ""
    return svc.composer.templates.file_body(where.origin, key[1], where.lang) or ""


def _signer(request: web.Request) -> str:
    """The preview is signed by the admin's agent name, else their user name."""
    svc = request.app[SERVICES]
    user = current_user(request)
    return svc.composer.agent_names.get(user.agent_id or "") or user.name


@routes.get(EDIT_PATH)
@requires("admin")
async def edit_template(request: web.Request) -> web.Response:
    return await _editor(request, _key(request))


@routes.post(EDIT_PATH)
@requires("admin")
async def save_template(request: web.Request) -> web.Response:
    """`action=preview` only renders; `action=save` checks, then stores the override."""
    svc = request.app[SERVICES]
    key = _key(request)
    form = await request.post()
    body = str(form.get("body", "")).replace("\r\n", "\n")
    if not body.strip():
        return await _editor(request, key, body, error="A template cannot be empty.",
                             status=422)
    try:
        svc.composer.check(body, *key, agent=_signer(request))
    except (BadTemplate, UnknownTemplate) as exc:
        return await _editor(request, key, body, error=str(exc), status=422)
    if form.get("action") != "save":
        return await _editor(request, key, body)
    async with svc.store.write() as session:
        await tone_templates.save_override(session, key, body, current_user(request).name,
                                           svc.clock.now())
    return await _editor(request, key, done="Saved. New drafts use this template.")


@routes.post(EDIT_PATH + "/revert")
@requires("admin")
async def revert_template(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    key = _key(request)
    async with svc.store.write() as session:
        removed = await tone_templates.delete_override(session, key)
    return await _editor(request, key, done="Back to the file." if removed else
                         "There was no edit to revert.")
