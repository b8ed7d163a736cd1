"""The Jinja environment shared by the seat and booth pages.

Templates load from the packages that own them (never the working
directory).  Text is written in both languages next to where it is used,
`{{ t("登录", "Log in") }}`, and the `lang` cookie picks one; Simplified
Chinese is the default.
"""

from __future__ import annotations

from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from starlette.requests import Request
from starlette.templating import Jinja2Templates

LANG_COOKIE = "lang"
LANGUAGES = ("zh", "en")


def request_language(request: Request) -> str:
    """`zh` unless the visitor chose English (cookie) or asked for it (?lang=en)."""
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return chosen if chosen in LANGUAGES else "zh"


@pass_context
def translate(context: Context, zh: str, en: str) -> str:
    return en if context.get("lang") == "en" else zh


def _language_context(request: Request) -> dict[str, Any]:
    lang = request_language(request)
    return {"lang": lang, "html_lang": "en" if lang == "en" else "zh-CN"}


def make_templates() -> Jinja2Templates:
    env = Environment(
        loader=ChoiceLoader([PackageLoader("seat", "templates"), PackageLoader("booth", "templates")]),
        autoescape=select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["t"] = translate
    return Jinja2Templates(env=env, context_processors=[_language_context])
